-- Dead letters count their repeats: a station that sends the same bad message again and
-- again has one row saying how often and from when to when, not one row and silence.
--
--   occurrences  how many times this rejection (same topic, payload, reason and detail:
--                the fingerprint) was received, counting each delivery, including a
--                broker's redelivery of a message committed but not yet acknowledged
--   first_seen   receive time of the first counted delivery: the same as received_at,
--                which keeps meaning the first arrival (the API's order and keyset)
--   last_seen    receive time of the latest delivery counted
--
-- The writer (storage.writer) sets all three; the defaults only serve a writer of an older
-- version still running during an upgrade (its repeats are not counted, as before).
ALTER TABLE dead_letters
    ADD COLUMN occurrences integer NOT NULL DEFAULT 1,
    ADD COLUMN first_seen timestamptz,
    ADD COLUMN last_seen timestamptz;

-- What is stored already stands for one delivery each.
UPDATE dead_letters SET first_seen = received_at, last_seen = received_at;

ALTER TABLE dead_letters
    ALTER COLUMN first_seen SET DEFAULT now(),
    ALTER COLUMN first_seen SET NOT NULL,
    ALTER COLUMN last_seen SET DEFAULT now(),
    ALTER COLUMN last_seen SET NOT NULL,
    ADD CONSTRAINT dead_letters_occurrences_positive CHECK (occurrences >= 1),
    ADD CONSTRAINT dead_letters_seen_in_order CHECK (first_seen <= last_seen);
