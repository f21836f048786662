"""The station review page (``/stations/{station_id}/review``): a station's hourly series of
one parameter with its automatic quality flags marked, its invalidated hours shaded and the
values the station itself flagged (HJ 212 data flags) drawn apart, a form that invalidates a
range through the REST API, and the station's reviews and audit entries.

What the server renders is what the other dashboard pages show without a key: hourly values,
their flags and which hours review took out (and why). Acting, and reading who acted
(reviews and audit log), go through the REST API from the browser with the key the operator
types; the key stays in the tab's sessionStorage and never reaches the page's server side.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import plotly.graph_objects as go
import psycopg

from api.dashboard import figures
from api.dashboard.pages import SHOWN_UNITS, Page, esc, one_decimal, station_href
from reports import AIR_REPORT_PARAMETERS, air_report, station_aggregates, unit_of
from reports.review import reviews_of_station
from schemas.reports import AirAnnual
from schemas.review import Review
from schemas.series import AggregateValue
from schemas.stations import Station
from standards.hj212 import DATA_FLAGS
from standards.parameters import CATALOGUE
from standards.quality import QualityThresholds
from standards.review import REASONS_NEEDING_COMMENT, REVIEW_REASONS
from storage.review_page import (
    StationFlaggedReading,
    latest_reading_of_parameter,
    parameters_of_station,
    station_flagged_readings,
)
from storage.series import Range

DEFAULT_DAYS = 7  # the window the page opens on: the last 7 local days with data
MAX_DAYS = 92  # about a quarter of hourly values (2,200 points) in one chart
ACTIVE_REVIEWS = 1000  # the most active reviews shaded at once
STATION_FLAGGED = 2000  # the most station-flagged values drawn and listed at once
DAY_FORMAT = re.compile(r"\d{4}-\d{2}-\d{2}")

VALID_LINE = "#2b6cb0"
NOT_VALID = "#a0aec0"
REVIEWED = "#dd6b20"
FLAGGED = "#c53030"
STATION_FLAG = "#718096"  # grey diamonds: values the station itself flagged
REVIEWED_SHADE = "rgba(221, 107, 32, 0.16)"


class BadReviewQuery(ValueError):
    """A query the page cannot show, said in words (a 400 page)."""


@dataclass(frozen=True)
class ReviewWindow:
    """The parameter and the local days [first_day, last_day] the page shows."""

    parameter: str
    first_day: date
    last_day: date

    @property
    def days(self) -> int:
        return (self.last_day - self.first_day).days + 1


@dataclass(frozen=True)
class AnnualFigures:
    """The station's and its city's annual statistics of the parameter in one year, as GET
    /v1/compliance/air gives them."""

    year: int
    station: AirAnnual | None
    city: AirAnnual | None
    as_of: datetime


@dataclass(frozen=True)
class ReviewView:
    """What the review page shows."""

    station: Station
    window: ReviewWindow
    parameters: Sequence[str]  # the station's parameters with readings (or its medium's)
    hours: Sequence[AggregateValue]  # hourly values of the window, with quality flags
    reviews: Sequence[Review]  # active reviews of the parameter overlapping the window
    annual: AnnualFigures | None  # air parameters of the annual report only
    latest: datetime | None  # the station's latest reading of the parameter
    # readings of the parameter in the window that the station flagged (HJ 212 data flags),
    # oldest first, at most STATION_FLAGGED; station_flagged_more: there are more
    station_flagged: Sequence[StationFlaggedReading] = ()
    station_flagged_more: bool = False


def station_flag_meaning(letter: str) -> str:
    """What an HJ 212 data flag says, in English with its Chinese name: "Produced while the
    analyser is under maintenance (维护)"."""
    flag = DATA_FLAGS.get(letter)
    if flag is None:
        return "A data flag HJ 212-2017 does not define"
    return f"{flag.name_en.rstrip('.')} ({flag.name_zh})"


def station_flag_text(letter: str) -> str:
    """The hover text of a value the station flagged."""
    return f"station flag {letter}: {station_flag_meaning(letter)} — not counted"


# --- the query ----------------------------------------------------------------------------


def _day(text: str, name: str) -> date:
    if not DAY_FORMAT.fullmatch(text):
        raise BadReviewQuery(f"{name} must be a day written YYYY-MM-DD, not {text!r}.")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise BadReviewQuery(f"{name} is not a calendar day: {text!r}.") from None


def _local_midnight(day: date, timezone: str) -> datetime:
    return datetime.combine(day, time(), tzinfo=ZoneInfo(timezone))


def _station_parameters(conn: psycopg.Connection, station: Station) -> list[str]:
    """The station's parameters with readings, catalogue order; its medium's without any."""
    found = set(parameters_of_station(conn, station.station_id))
    medium = "air" if station.kind == "air" else "water"
    names = [p for p in CATALOGUE if p in found] or [
        p.name for p in CATALOGUE.values() if p.medium == medium
    ]
    return names


def review_window(
    conn: psycopg.Connection,
    station: Station,
    parameter: str | None,
    first: str | None,
    last: str | None,
) -> tuple[ReviewWindow, list[str], datetime | None]:
    """The window the query asks for (``from``/``to`` are local days, both included): by
    default the parameter's last 7 days with data (PM2.5 where the station has it). Raises
    BadReviewQuery for what the page cannot show."""
    parameters = _station_parameters(conn, station)
    if parameter is None:
        parameter = "pm25" if "pm25" in parameters else parameters[0]
    elif parameter not in CATALOGUE:
        raise BadReviewQuery(
            f"Unknown parameter {parameter!r}: one of {', '.join(sorted(CATALOGUE))}."
        )
    latest = latest_reading_of_parameter(conn, station.station_id, parameter)
    tz = ZoneInfo(station.timezone)
    newest = (latest or datetime.now(UTC)).astimezone(tz).date()
    last_day = newest if last is None else _day(last, "to")
    if first is None:
        first_day = last_day - timedelta(days=DEFAULT_DAYS - 1)
    else:
        first_day = _day(first, "from")
        if last is None:
            last_day = first_day + timedelta(days=DEFAULT_DAYS - 1)
    if last_day < first_day:
        raise BadReviewQuery(f"to ({last_day}) is before from ({first_day}).")
    if (last_day - first_day).days + 1 > MAX_DAYS:
        raise BadReviewQuery(f"The page shows at most {MAX_DAYS} days at once.")
    return ReviewWindow(parameter, first_day, last_day), parameters, latest


def _annual_figures(
    conn: psycopg.Connection, station: Station, parameter: str, year: int
) -> AnnualFigures | None:
    """The annual figures an invalidation of an air station's parameter changes."""
    if station.kind != "air" or parameter not in AIR_REPORT_PARAMETERS:
        return None
    report = air_report(conn, year, parameter)
    own = next((s for s in report.stations if s.id == station.station_id), None)
    city = next((c for c in report.cities if c.id == station.city_code), None)
    return AnnualFigures(year=year, station=own, city=city, as_of=report.as_of)


def review_view(
    conn: psycopg.Connection,
    station: Station,
    parameter: str | None,
    first: str | None,
    last: str | None,
    thresholds: QualityThresholds,
) -> ReviewView:
    """Everything the page shows, from the functions behind the REST API."""
    window, parameters, latest = review_window(conn, station, parameter, first, last)
    start = _local_midnight(window.first_day, station.timezone)
    end = _local_midnight(window.last_day + timedelta(days=1), station.timezone)
    hours = station_aggregates(
        conn,
        station.station_id,
        station.timezone,
        window.parameter,
        "hourly",
        Range(start_ts=start, end_ts=end),
        thresholds,
    )
    reviews = [
        r
        for r in reviews_of_station(conn, station.station_id, active=True, limit=ACTIVE_REVIEWS)
        if window.parameter in r.parameters and r.from_ < end and r.to > start
    ]
    station_flagged = station_flagged_readings(
        conn, station.station_id, window.parameter, start, end, STATION_FLAGGED + 1
    )
    return ReviewView(
        station=station,
        window=window,
        parameters=parameters
        if window.parameter in parameters
        else [*parameters, window.parameter],
        hours=hours,
        reviews=reviews,
        annual=_annual_figures(conn, station, window.parameter, window.last_day.year),
        latest=latest,
        station_flagged=station_flagged[:STATION_FLAGGED],
        station_flagged_more=len(station_flagged) > STATION_FLAGGED,
    )


# --- the chart ----------------------------------------------------------------------------


def _review_of(hour: datetime, reviews: Sequence[Review]) -> Review | None:
    return next((r for r in reviews if r.from_ <= hour < r.to), None)


def _reading_time(instant: datetime, timezone: str) -> str:
    """A reading's time in station time, with seconds only where it has them."""
    local = instant.astimezone(ZoneInfo(timezone))
    return local.strftime("%Y-%m-%d %H:%M:%S" if local.second else "%Y-%m-%d %H:%M")


def _shown_unit(parameter: str) -> str:
    unit = unit_of(parameter)
    return SHOWN_UNITS.get(unit, unit)


def review_chart(view: ReviewView) -> go.Figure:
    """The hourly series: valid hours as a line, hours review took out as orange squares on
    an orange band, other hours that are not valid as grey crosses, flagged hours circled in
    red with their flags' sentences on hover, and the values the station itself flagged as
    grey diamonds with their flag's meaning. Drag across it to select a range."""
    tz = view.station.timezone
    unit = _shown_unit(view.window.parameter)
    line_x: list[str | None] = []
    line_y: list[float | None] = []
    reviewed: list[tuple[str, float | None, str]] = []
    not_valid: list[tuple[str, float | None, str]] = []
    flagged: list[tuple[str, float | None, str]] = []
    previous: datetime | None = None
    for hour in view.hours:
        stamp = figures.local_time(hour.period_start, tz)
        review = _review_of(hour.period_start, view.reviews)
        if review is not None:
            reviewed.append(
                (stamp, hour.mean, f"invalidated by review {review.review_id}: {review.reason}")
            )
        elif not hour.coverage.valid:
            not_valid.append((stamp, hour.mean, "; ".join(hour.coverage.reasons) or "not valid"))
        else:
            if previous is not None and hour.period_start - previous > timedelta(hours=1):
                line_x.append(None)
                line_y.append(None)
            line_x.append(stamp)
            line_y.append(hour.mean)
            previous = hour.period_start
        if hour.quality_flags:
            messages = "<br>".join(
                figures.label(f"{flag.code}: {flag.message}") for flag in hour.quality_flags
            )
            flagged.append((stamp, hour.mean, messages))
    by_station = [
        (_reading_time(r.ts, tz), r.value, figures.label(station_flag_text(r.letter)))
        for r in view.station_flagged
    ]
    figure = go.Figure()
    figure.add_scatter(
        x=line_x,
        y=line_y,
        mode="lines+markers",
        marker={"size": 3},
        line={"color": VALID_LINE, "width": 1.5},
        name="valid hour",
        connectgaps=False,
        hovertemplate="%{x}: %{y:.1f} " + unit + "<extra></extra>",
    )
    marks = (
        (reviewed, "invalidated by review", {"color": REVIEWED, "symbol": "square", "size": 6}),
        (not_valid, "not valid (too little data)", {"color": NOT_VALID, "symbol": "x", "size": 6}),
        (
            flagged,
            "automatic quality flag",
            {
                "color": "rgba(0,0,0,0)",
                "symbol": "circle-open",
                "size": 12,
                "line": {"color": FLAGGED, "width": 2},
            },
        ),
        (
            by_station,
            "flagged by the station (not counted)",
            {"color": STATION_FLAG, "symbol": "diamond", "size": 8},
        ),
    )
    for points, name, marker in marks:
        if not points:
            continue
        figure.add_scatter(
            x=[p[0] for p in points],
            y=[p[1] for p in points],
            customdata=[p[2] for p in points],
            mode="markers",
            marker=marker,
            name=name,
            hovertemplate="%{x}: %{y:.1f} " + unit + "<br>%{customdata}<extra></extra>",
        )
    start = _local_midnight(view.window.first_day, tz)
    end = start + timedelta(days=view.window.days)
    for review in view.reviews:
        figure.add_vrect(
            x0=figures.local_time(max(review.from_, start), tz),
            x1=figures.local_time(min(review.to, end), tz),
            fillcolor=REVIEWED_SHADE,
            line_width=0,
            layer="below",
        )
    figure.update_layout(
        template="plotly_white",
        height=380,
        margin={"l": 56, "r": 16, "t": 28, "b": 40},
        font={"family": figures.FONT, "size": 12, "color": "#2d3748"},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "x": 0, "font": {"size": 11}},
        yaxis={"title": {"text": f"{view.window.parameter} hourly mean, {unit}"}},
        hoverlabel={"font": {"family": figures.FONT}},
        xaxis={
            "type": "date",
            "range": [figures.local_time(start, tz), figures.local_time(end, tz)],
        },
        dragmode="select",
        selectdirection="h",
        showlegend=True,
        hovermode="closest",
    )
    return figure


# --- the page -----------------------------------------------------------------------------

REVIEW_CSS = """
.review-form { display:grid; grid-template-columns:repeat(auto-fill, minmax(220px, 1fr));
               gap:10px 14px; align-items:end; }
.review-form label, .window-form label { display:flex; flex-direction:column; gap:3px;
               font-size:12.5px; color:var(--muted); }
.review-form .wide { grid-column:1 / -1; }
.window-form { display:flex; gap:10px; align-items:end; flex-wrap:wrap; margin:4px 0 8px; }
input, select, textarea, button { font:inherit; }
input, select, textarea { padding:4px 6px; border:1px solid #cbd5e0; border-radius:4px;
                          background:#fff; color:var(--ink); }
button { padding:5px 14px; border-radius:4px; border:1px solid var(--accent); cursor:pointer;
         background:#fff; color:var(--accent); }
button.primary { background:var(--accent); color:#fff; font-weight:600; }
button:disabled { opacity:.6; cursor:wait; }
fieldset { border:1px solid var(--line); border-radius:6px; padding:6px 10px; margin:0; }
.review-form fieldset label { flex-direction:row; align-items:center; display:inline-flex; gap:4px;
                 margin-right:10px; color:var(--ink); }
.message { margin:10px 0 0; padding:8px 12px; border-radius:6px; font-size:13.5px; }
.message.ok { background:#f0fff4; border:1px solid #9ae6b4; color:#22543d; }
.message.error { background:#fff5f5; border:1px solid #feb2b2; color:#822727; }
.message.info { background:#ebf8ff; border:1px solid #90cdf4; color:#2a4365; }
.explain { background:#fffaf0; border:1px solid #fbd38d; border-radius:8px;
           padding:10px 14px; margin-bottom:12px; }
.explain p, .explain ol { margin:4px 0; }
.explain ol { padding-left:20px; }
"""

# The page's behaviour: selection → inputs, Invalidate / Restore through the REST API with the
# key kept in sessionStorage, and the reviews and audit tables read through the API too.
REVIEW_JS = r"""
(() => {
  const config = JSON.parse(document.getElementById("review-config").textContent);
  const $ = (id) => document.getElementById(id);
  const KEY = "airwater-api-key";
  const keyInput = $("api-key");
  keyInput.value = sessionStorage.getItem(KEY) || "";
  const remember = () => {
    const key = keyInput.value.trim();
    if (key) sessionStorage.setItem(KEY, key); else sessionStorage.removeItem(KEY);
  };
  keyInput.addEventListener("change", () => { remember(); loadLists(); });
  $("forget-key").addEventListener("click", () => {
    keyInput.value = ""; remember(); loadLists();
  });
  $("use-key").addEventListener("click", () => { remember(); loadLists(); });

  // --- time: the inputs hold the station's wall-clock time -----------------------------
  const pad = (n) => String(n).padStart(2, "0");
  const HOUR = 3600 * 1000;
  // "2025-03-01 08:30:12.5" (plotly, station time) as milliseconds of the same wall clock
  const wallClock = (text) => {
    let stamp = String(text).trim().replace(" ", "T");
    if (stamp.length === 10) stamp += "T00:00";
    return Date.parse(stamp.slice(0, 19) + "Z");
  };
  const inputValue = (ms) => new Date(ms).toISOString().slice(0, 16);
  const setRange = (startMs, endMs) => {
    $("range-from").value = inputValue(Math.floor(startMs / HOUR) * HOUR);
    $("range-to").value = inputValue(Math.ceil(endMs / HOUR) * HOUR);
  };
  const shown = new Intl.DateTimeFormat("sv-SE", {
    timeZone: config.timezone, year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit",
  });
  const local = (iso) => (iso ? shown.format(new Date(iso)) : "");

  // --- the chart --------------------------------------------------------------------------
  const chart = $("review-chart");
  const figure = JSON.parse($("review-figure").textContent);
  Plotly.newPlot(chart, figure.data, figure.layout, {
    displaylogo: false, responsive: true,
    modeBarButtonsToRemove: ["lasso2d", "autoScale2d"],
  }).then(() => {
    chart.on("plotly_selected", (event) => {
      if (event && event.range && event.range.x) {
        setRange(wallClock(event.range.x[0]), wallClock(event.range.x[1]));
        say("info", "Range set from the chart: " + $("range-from").value.replace("T", " ") +
            " to " + $("range-to").value.replace("T", " ") + " (station time). Check it, " +
            "choose a reason and press Invalidate.");
      }
    });
    chart.on("plotly_click", (event) => {
      if (event && event.points && event.points.length) {
        const start = wallClock(event.points[0].x);
        setRange(start, start + HOUR);
      }
    });
    chart.dataset.ready = "true";
  });

  // --- talking to the API -----------------------------------------------------------------
  const say = (state, text) => {
    const box = $("action-message");
    box.className = "message " + state;
    box.dataset.state = state;
    box.textContent = text;
    box.hidden = false;
  };
  const call = async (method, url, body) => {
    const headers = { Accept: "application/json" };
    const key = keyInput.value.trim();
    if (key) headers.Authorization = "Bearer " + key;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(url, {
        method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (error) {
      return { ok: false, status: 0, data: { detail: "the server could not be reached (" +
        error.message + ")" } };
    }
    let data = null;
    try { data = await response.json(); } catch (error) { data = null; }
    return { ok: response.ok, status: response.status, data };
  };
  // a refusal in words: the problem's detail, each bad field, and what to do about a key
  const refusal = (result) => {
    const problem = result.data || {};
    let words = problem.detail || problem.title || ("the server answered " + result.status);
    if (Array.isArray(problem.invalid_params) && problem.invalid_params.length) {
      words += ": " + problem.invalid_params.map((p) => p.name + " " + p.reason).join("; ");
    }
    if (result.status === 401) {
      return "No valid API key: " + words + ". Paste a key with the read and review " +
        "scopes above.";
    }
    if (result.status === 403) {
      return "This key may not do that: " + words + ". Invalidating and restoring need " +
        "the review scope.";
    }
    if (result.status === 429) return "Too many requests just now: " + words + ".";
    return words.charAt(0).toUpperCase() + words.slice(1) + ".";
  };
  const cell = (text, css) => {
    const td = document.createElement("td");
    td.textContent = text === null || text === undefined ? "" : String(text);
    if (css) td.className = css;
    return td;
  };
  const fill = (id, rows, empty) => {
    const body = $(id).querySelector("tbody");
    body.replaceChildren(...rows);
    $(id + "-empty").textContent = rows.length ? "" : empty;
  };

  const reviewRow = (review) => {
    const tr = document.createElement("tr");
    tr.dataset.reviewId = review.review_id;
    tr.dataset.active = review.active ? "true" : "false";
    tr.append(
      cell(review.review_id, "num"), cell(review.parameters.join(", ")),
      cell(local(review.from)), cell(local(review.to)),
      cell(review.reason_text + " (" + review.reason + ")", "wrap"),
      cell(review.comment, "wrap"), cell(review.hours, "num"),
      cell(review.created_by + ", " + local(review.created_at)),
    );
    const state = cell(review.active ? "active" :
      "restored by " + review.restored_by + ", " + local(review.restored_at));
    state.dataset.testid = "review-state";
    tr.append(state);
    const action = document.createElement("td");
    if (review.active) {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = "Restore";
      button.dataset.testid = "restore";
      button.addEventListener("click", () => restore(review, button));
      action.append(button);
    }
    tr.append(action);
    return tr;
  };
  const auditRow = (entry) => {
    const tr = document.createElement("tr");
    tr.dataset.auditId = entry.audit_id;
    const range = entry.from ? local(entry.from) + " – " + local(entry.to) : "";
    tr.append(
      cell(entry.audit_id, "num"), cell(local(entry.at)), cell(entry.actor),
      cell(entry.action), cell((entry.parameters || []).join(", ")), cell(range),
      cell(entry.reason), cell(entry.comment, "wrap"), cell(entry.hours, "num"),
      cell(entry.review_id ?? entry.event_id ?? "", "num"),
    );
    return tr;
  };

  const AUDIT_PAGES = 20;
  const AUDIT_SHOWN = 200;
  const NEED_KEY = "Enter an API key with the read scope above to see the reviews and " +
    "the audit log.";
  async function loadLists() {
    const station = encodeURIComponent(config.station_id);
    if (!keyInput.value.trim() && !config.public_read) {
      fill("reviews", [], NEED_KEY);
      fill("audit", [], NEED_KEY);
      return;
    }
    const reviews = await call("GET", "/v1/stations/" + station + "/reviews?limit=1000");
    if (!reviews.ok) {
      const words = reviews.status === 401 ? NEED_KEY : refusal(reviews);
      fill("reviews", [], words);
      fill("audit", [], words);
      return;
    }
    fill("reviews", reviews.data.map(reviewRow), "No review of this station yet.");
    // the audit log pages oldest first: read to the end, show the newest first
    let entries = [];
    let after = 0;
    for (let page = 0; page < AUDIT_PAGES; page += 1) {
      const audit = await call("GET", "/v1/audit?limit=1000&after=" + after +
                               "&station_id=" + station);
      if (!audit.ok) { fill("audit", [], refusal(audit)); return; }
      entries = entries.concat(audit.data.items);
      if (audit.data.next_after === null) break;
      after = audit.data.next_after;
    }
    entries.reverse();
    fill("audit", entries.slice(0, AUDIT_SHOWN).map(auditRow),
         "No audit entry for this station yet.");
  }

  async function restore(review, button) {
    remember();
    button.disabled = true;
    const result = await call("POST", "/v1/reviews/" + review.review_id + "/restore",
                              { comment: $("comment").value.trim() });
    button.disabled = false;
    if (result.ok) {
      say("ok", "Restored review " + review.review_id + ": its " + review.hours +
          " parameter-hours count again once the aggregation stage has run (reload the " +
          "page then to see the chart and the annual figures).");
    } else {
      say("error", "Not restored. " + refusal(result));
    }
    await loadLists();
  }

  $("review-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    remember();
    const parameters = [...document.querySelectorAll("input[name=parameters]:checked")]
      .map((box) => box.value);
    const from = $("range-from").value;
    const to = $("range-to").value;
    const reason = $("reason").value;
    const comment = $("comment").value.trim();
    if (!from || !to) { say("error", "Choose the range first: drag across the chart or " +
                            "type its start and end."); return; }
    if (!parameters.length) { say("error", "Tick at least one parameter."); return; }
    if (!reason) { say("error", "Choose a reason from the list."); return; }
    if (!keyInput.value.trim()) { say("error", "Paste an API key with the review scope " +
                                      "first."); return; }
    const withOffset = (value) => (value.length === 16 ? value + ":00" : value) +
      config.utc_offset;
    const button = $("invalidate");
    button.disabled = true;
    say("info", "Sending…");
    const result = await call("POST", "/v1/stations/" + encodeURIComponent(config.station_id) +
      "/reviews", { parameters, from: withOffset(from), to: withOffset(to), reason, comment });
    button.disabled = false;
    if (result.ok) {
      const review = result.data;
      say("ok", "Invalidated " + review.hours + " parameter-hours of " +
          review.parameters.join(", ") + " from " + local(review.from) + " to " +
          local(review.to) + " (review " + review.review_id + "). They leave every figure " +
          "once the aggregation stage has run; reload the page then to see the chart and " +
          "the annual figures. Restore puts them back.");
    } else {
      say("error", "Nothing was invalidated. " + refusal(result));
    }
    await loadLists();
  });

  loadLists();
})();
"""


def _utc_offset(station: Station, window: ReviewWindow) -> str:
    """The station's UTC offset at the window's end, as ISO 8601 writes it (+08:00)."""
    moment = _local_midnight(window.last_day, station.timezone)
    return moment.isoformat()[-6:]


def _window_nav(view: ReviewView) -> str:
    """The window form (parameter, first and last day) and links one window back and on."""
    window = view.window
    base = station_href(view.station.station_id) + "/review"
    options = "".join(
        f'<option value="{esc(p)}"{" selected" if p == window.parameter else ""}>{esc(p)}</option>'
        for p in view.parameters
    )
    span = timedelta(days=window.days)

    def link(first: date, text: str) -> str:
        last = first + span - timedelta(days=1)
        return (
            f'<a href="{esc(base)}?parameter={esc(window.parameter)}&amp;from={first}'
            f'&amp;to={last}">{esc(text)}</a>'
        )

    return (
        f'<form class="window-form" method="get" action="{esc(base)}">'
        f'<label>Parameter<select name="parameter">{options}</select></label>'
        f'<label>First day<input type="date" name="from" value="{window.first_day}"></label>'
        f'<label>Last day<input type="date" name="to" value="{window.last_day}"></label>'
        '<button type="submit">Show</button>'
        f"<span>{link(window.first_day - span, '← earlier')} · "
        f"{link(window.first_day + span, 'later →')}</span></form>"
    )


def _annual_panel(view: ReviewView) -> str:
    annual = view.annual
    if annual is None:
        return ""
    unit = _shown_unit(view.window.parameter)

    def figure_of(value: AirAnnual | None, what: str, testid: str) -> str:
        if value is None:
            shown = f'<span class="na" data-testid="{testid}">—</span>'
            note = "no data"
        else:
            shown = (
                f'<span data-testid="{testid}">{one_decimal(value.annual_mean)}</span>'
                f'<span class="unit">{esc(unit)}</span>'
            )
            state = "valid year" if value.coverage.valid else "not a valid year yet"
            note = f"{value.valid_days} valid days · {state}"
        return (
            f'<div class="card"><div class="label">{esc(what)}</div>'
            f'<div class="big">{shown}</div><div class="note">{esc(note)}</div></div>'
        )

    station = view.station
    as_of = annual.as_of.astimezone(ZoneInfo(station.timezone)).strftime("%Y-%m-%d %H:%M")
    return (
        '<section class="cards" data-testid="annual-figures">'
        + figure_of(
            annual.station,
            f"{station.name}: annual {view.window.parameter} {annual.year}",
            "station-annual",
        )
        + figure_of(
            annual.city,
            f"{station.city or station.city_code}: annual {view.window.parameter} {annual.year}",
            "city-annual",
        )
        + '<div class="card" style="grid-column:span 2"><div class="label">Where these come '
        "from</div><div class=note>The annual statistics of GET /v1/compliance/air (HJ 663: "
        "mean of the valid daily means), as of "
        f"{esc(as_of)} station time. After an invalidation or a restore they change once "
        "the aggregation stage has run; reload the page to see them.</div></div></section>"
    )


def _reason_options() -> str:
    return '<option value="">— choose a reason —</option>' + "".join(
        f'<option value="{esc(code)}">{esc(sentence)} ({esc(code)})'
        f"{' — comment required' if code in REASONS_NEEDING_COMMENT else ''}</option>"
        for code, sentence in REVIEW_REASONS.items()
    )


def _counts(view: ReviewView) -> str:
    flagged = sum(1 for h in view.hours if h.quality_flags)
    reviewed = sum(1 for h in view.hours if _review_of(h.period_start, view.reviews))
    return (
        f'<span data-testid="hours-shown">{len(view.hours)}</span> hours with data · '
        f'<span data-testid="hours-flagged">{flagged}</span> flagged · '
        f'<span data-testid="hours-reviewed">{reviewed}</span> invalidated by review · '
        f'<span data-testid="station-flagged-count">{len(view.station_flagged)}</span> values '
        "flagged by the station"
    )


def _station_flagged_table(view: ReviewView) -> str:
    """The values the station flagged (HJ 212 data flags), oldest first; nothing without."""
    if not view.station_flagged:
        return ""
    tz = view.station.timezone
    unit = _shown_unit(view.window.parameter)
    rows = "".join(
        f'<tr><td>{esc(_reading_time(r.ts, tz))}</td><td class="num">{one_decimal(r.value)}</td>'
        f'<td data-testid="station-flag">{esc(r.letter)}</td>'
        f"<td>{esc(station_flag_meaning(r.letter))}</td></tr>"
        for r in view.station_flagged
    )
    more = (
        f'<p class="hint">Only the first {STATION_FLAGGED} are shown; choose fewer days to '
        "see the rest.</p>"
        if view.station_flagged_more
        else ""
    )
    return (
        '<h3>Values the station flagged</h3><p class="hint">Sent with an HJ 212 data flag '
        "other than N (normal): kept, but counted toward no hour or figure.</p>"
        '<div class="scroll"><table data-testid="station-flagged"><thead><tr><th>time</th>'
        f'<th class="num">value, {esc(unit)}</th><th>flag</th><th>meaning</th></tr></thead>'
        f"<tbody>{rows}</tbody></table></div>{more}"
    )


def review_page(view: ReviewView, plotly_src: str, public_read: bool = False) -> str:
    """The HTML of the review page; with ``public_read`` the browser reads the reviews and
    the audit log without a key."""
    station = view.station
    window = view.window
    tz = station.timezone
    offset = _utc_offset(station, window)
    config = {
        "station_id": station.station_id,
        "parameter": window.parameter,
        "timezone": tz,
        "utc_offset": offset,
        "public_read": public_read,
    }
    chart = (
        '<div class="chart" id="review-chart" data-testid="review-chart"></div>'
        f'<script type="application/json" id="review-figure">'
        f"{figures.figure_json(review_chart(view))}</script>"
    )
    if not view.hours:
        latest = (
            f" Its latest reading of {window.parameter} is from "
            f"{figures.local_time(view.latest, tz)}."
            if view.latest
            else f" It has no reading of {window.parameter}."
        )
        chart = (
            f'<p class="hint" data-testid="no-hours">No hourly {esc(window.parameter)} values '
            f"from {window.first_day} to {window.last_day}.{esc(latest)}</p>" + chart
        )
    boxes = "".join(
        f'<label><input type="checkbox" name="parameters" value="{esc(p)}"'
        f"{' checked' if p == window.parameter else ''}>{esc(p)}</label>"
        for p in view.parameters
    )
    heading = (
        f'<h1>Review: <span data-testid="station-name">{esc(station.name)}</span>'
        f"<small>{esc(station.station_id)} · {esc(station.city or '')} · times in station "
        f"time ({esc(tz)}, UTC{esc(offset)})</small></h1>"
    )
    explain = (
        '<div class="explain" data-testid="explain">'
        "<p><b>What invalidating does.</b> The hours you invalidate leave every figure — "
        "the hour's validity, daily means, monthly and annual statistics, compliance and the "
        "assessment — once the aggregation stage has run. "
        "Nothing is deleted: the readings stay stored, and <b>Restore</b> puts the hours back. "
        "Every invalidation and restore is kept in the audit log below: who, when, why and "
        "how many hours.</p>"
        "<p><b>Automatic quality flags</b> (red circles) only point at hours worth a look — a "
        "stuck value, a spike, PM2.5 above PM10, a value out of range, a run of zeros; they "
        "change no figure until a person invalidates the hours.</p>"
        "<p>Values the station itself flagged (HJ 212 data flags) are kept but not counted; "
        "they are shown as grey diamonds.</p>"
        "<ol><li>Choose the parameter and the days to look at.</li>"
        "<li>Drag across the chart to select a range (or click one hour, or type the start "
        "and end below).</li>"
        "<li>Choose a reason and say what happened in the comment.</li>"
        "<li>Paste an API key with the <code>read</code> and <code>review</code> scopes: it is "
        "kept in this browser tab only and sent only to the API.</li>"
        "<li>Press <b>Invalidate</b>.</li></ol></div>"
    )
    form = (
        '<div class="panel"><h2>Invalidate a range</h2>'
        '<form id="review-form" class="review-form" autocomplete="off" novalidate>'
        '<label>From (station time, included)<input type="datetime-local" id="range-from" '
        'step="3600" data-testid="range-from"></label>'
        '<label>To (station time, excluded)<input type="datetime-local" id="range-to" '
        'step="3600" data-testid="range-to"></label>'
        f"<fieldset><legend>Parameters</legend>{boxes}</fieldset>"
        '<label>Reason<select id="reason" data-testid="reason">'
        f"{_reason_options()}</select></label>"
        '<label class="wide">Comment (what happened; required for “other”)'
        '<textarea id="comment" rows="2" maxlength="2000" data-testid="comment"></textarea>'
        "</label>"
        '<label>API key (read + review)<input type="password" id="api-key" '
        'data-testid="api-key" placeholder="paste a key" autocomplete="off"></label>'
        '<div><button type="button" id="use-key">Use key</button> '
        '<button type="button" id="forget-key">Forget key</button></div>'
        '<div><button type="submit" class="primary" id="invalidate" '
        'data-testid="invalidate">Invalidate</button></div>'
        "</form>"
        '<div id="action-message" class="message" data-testid="action-message" role="status" '
        "hidden></div></div>"
    )
    reviews_table = (
        '<div class="panel"><h2>Reviews of this station</h2>'
        '<p class="hint">Newest range first; restored reviews stay listed. Read through '
        "<code>GET /v1/stations/{id}/reviews</code> with your key.</p>"
        '<div class="scroll"><table id="reviews" data-testid="reviews"><thead><tr>'
        '<th class="num">#</th><th>parameters</th><th>from</th><th>to</th><th>reason</th>'
        '<th>comment</th><th class="num">hours</th><th>by, when</th><th>state</th><th></th>'
        '</tr></thead><tbody></tbody></table></div><p class="hint" id="reviews-empty">'
        "Loading…</p></div>"
    )
    audit_table = (
        '<div class="panel"><h2>Audit log of this station</h2>'
        '<p class="hint">Every review action on this station and the sand-dust events of its '
        "city, newest first; nothing in it can be changed (<code>GET /v1/audit</code>).</p>"
        '<div class="scroll"><table id="audit" data-testid="audit"><thead><tr>'
        '<th class="num">#</th><th>when</th><th>who</th><th>action</th><th>parameters</th>'
        '<th>range</th><th>reason</th><th>comment</th><th class="num">hours</th>'
        '<th class="num">review / event</th></tr></thead><tbody></tbody></table></div>'
        '<p class="hint" id="audit-empty">Loading…</p></div>'
    )
    body = (
        f"<style>{REVIEW_CSS}</style>"
        + heading
        + explain
        + _annual_panel(view)
        + '<div class="panel" style="margin-bottom:12px">'
        f"<h2>{esc(window.parameter)} hourly means, {window.first_day} to {window.last_day}</h2>"
        + _window_nav(view)
        + f'<p class="hint">{_counts(view)}. Blue: valid hours; orange squares on an orange '
        "band: invalidated by review; grey crosses: too little data; red circles: automatic "
        "quality flags (hover for the reason); grey diamonds: values the station flagged.</p>"
        + chart
        + _station_flagged_table(view)
        + "</div>"
        + '<section class="stack">'
        + form
        + reviews_table
        + audit_table
        + "</section>"
        + f'<p><a href="{esc(station_href(station.station_id))}">← station page</a> · '
        '<a href="/">national overview</a></p>'
        + f'<script type="application/json" id="review-config">{_json(config)}</script>'
        + f'<script src="{esc(plotly_src)}"></script><script>{REVIEW_JS}</script>'
    )
    return Page().render(f"Review {station.name}", body)


def _json(value: object) -> str:
    """JSON that can sit inside a <script> element."""
    return json.dumps(value).replace("</", "<\\/")
