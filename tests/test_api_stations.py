"""/v1/stations and /v1/keys, auth on each route."""

from __future__ import annotations

import pytest

from tests.conftest import TEST_STATIONS


def test_list_pages_through_every_station_without_gaps_or_repeats(admin):
    seen, cursor = [], None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = admin.get("/v1/stations", params=params)
        assert page.status_code == 200, page.text
        seen += [s["station_id"] for s in page.json()["items"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(s.station_id for s in TEST_STATIONS)


def test_list_filters_by_kind_province_and_active(admin):
    water = admin.get("/v1/stations", params={"kind": "surface_water"}).json()["items"]
    assert {s["station_id"] for s in water} == {"W-YANGTZE-01", "W-TAIHU-01"}
    jiangsu = admin.get("/v1/stations", params={"province": "Jiangsu"}).json()["items"]
    assert len(jiangsu) == 2
    inactive = admin.get("/v1/stations", params={"active": False}).json()["items"]
    assert [s["station_id"] for s in inactive] == ["999999-OFF"]


def test_create_get_update_deactivate(admin):
    body = {
        "station_id": "440100-A001",
        "name": "Guangya",
        "city": "Guangzhou",
        "city_code": "440100",
        "province": "Guangdong",
        "latitude": 23.14,
    }
    created = admin.post("/v1/stations", json=body)
    assert created.status_code == 201, created.text
    assert admin.post("/v1/stations", json=body).json()["type"] == "/problems/station-exists"
    assert admin.get("/v1/stations/440100-A001").json()["latitude"] == 23.14
    patched = admin.patch("/v1/stations/440100-A001", json={"name": "Guangya Park"})
    assert patched.status_code == 200 and patched.json()["name"] == "Guangya Park"
    gone = admin.delete("/v1/stations/440100-A001")
    assert gone.status_code == 200 and gone.json()["active"] is False
    assert admin.get("/v1/stations/440100-A001").json()["active"] is False


def test_unknown_station_is_404_problem(admin):
    response = admin.get("/v1/stations/nope")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "/problems/station-not-found"


def test_validation_error_names_the_field(admin):
    response = admin.post("/v1/stations", json={"station_id": "X-1", "name": "x", "latitude": 91})
    assert response.status_code == 422
    problem = response.json()
    assert problem["type"] == "/problems/validation-error"
    assert [p["name"] for p in problem["invalid_params"]] == ["body.latitude"]
    bad_limit = admin.get("/v1/stations", params={"limit": 0})
    assert bad_limit.json()["invalid_params"][0]["name"] == "query.limit"
    assert admin.get("/v1/stations", params={"cursor": "%%%"}).status_code == 400


@pytest.mark.parametrize(
    ("method", "path", "scope"),
    [
        ("GET", "/v1/stations", "read"),
        ("GET", "/v1/stations/110000-A001", "read"),
        ("POST", "/v1/stations", "admin"),
        ("PATCH", "/v1/stations/110000-A001", "admin"),
        ("DELETE", "/v1/stations/110000-A001", "admin"),
        ("GET", "/v1/keys", "admin"),
        ("POST", "/v1/keys", "admin"),
        ("DELETE", "/v1/keys/kdeadbeef", "admin"),
    ],
)
def test_401_without_key_403_without_scope(api, make_key, method, path, scope):
    assert api.request(method, path).status_code == 401
    assert (
        api.request(method, path, headers={"Authorization": "Bearer aw_kbad_x"}).status_code == 401
    )
    wrong = make_key("ingest") if scope != "ingest" else make_key("read")
    denied = api.request(method, path, headers={"Authorization": f"Bearer {wrong}"})
    assert denied.status_code == 403
    assert denied.json()["type"] == "/problems/forbidden"


def test_keys_are_stored_hashed_listed_and_revocable(admin, api, api_pool):
    created = admin.post("/v1/keys", json={"name": "dashboard", "scopes": ["read"]})
    assert created.status_code == 201
    token, key_id = created.json()["token"], created.json()["key_id"]
    with api_pool.connection() as conn:
        stored = conn.execute(
            "SELECT secret_sha256 FROM api_keys WHERE key_id = %s", (key_id,)
        ).fetchone()
    assert stored is not None and token.split("_", 2)[2].encode() not in bytes(stored[0])
    reader = {"Authorization": f"Bearer {token}"}
    assert api.get("/v1/stations", headers=reader).status_code == 200
    assert "token" not in admin.get("/v1/keys").json()[0]
    assert admin.delete(f"/v1/keys/{key_id}").json()["revoked_at"] is not None
    assert api.get("/v1/stations", headers=reader).status_code == 401


def test_public_read_allows_reading_without_a_key_but_not_writing(api_settings, api):
    api_settings.public_read = True
    assert api.get("/v1/stations").status_code == 200
    assert api.post("/v1/stations", json={"station_id": "X-1", "name": "x"}).status_code == 401


def test_health_ready_metrics_docs(api):
    assert api.get("/health").json() == {"status": "ok"}
    ready = api.get("/ready")  # the test settings point the broker at a closed port
    assert ready.status_code == 503
    assert ready.json()["database"] is True and ready.json()["broker"] is False
    assert "airwater_api_requests_total" in api.get("/metrics/").text
    schema = api.get("/openapi.json").json()
    assert "Problem" in schema["components"]["schemas"]


def test_junk_in_the_path_is_a_422_not_a_database_error(admin):
    assert admin.get("/v1/stations/a%00b").status_code == 422
    assert admin.delete("/v1/keys/a%00b").status_code == 422
