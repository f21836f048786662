"""HTML of the dashboard pages, written as plain Python: every value from the database goes
through ``esc`` (html.escape) on its way in, figures travel as JSON in
``<script type="application/json">`` elements and are drawn by the bundled plotly.min.js.

The numbers a test reads carry ``data-testid`` attributes and are shown to one decimal.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from urllib.parse import quote
from zoneinfo import ZoneInfo

import plotly.graph_objects as go

from api.dashboard import figures
from schemas.alerts import AlertEvent
from schemas.aqi_api import Aqi
from schemas.assessment import RankedCity, RestOfYearOut, Status
from schemas.reports import AirReport, AirTrendPoint, WaterReport, WaterSection
from schemas.series import AggregateValue
from schemas.stations import Station
from standards.aqi import CATEGORIES
from standards.assessment import INDEX_DECIMALS, STATISTIC_DECIMALS
from standards.targets import NATIONAL_PM25_2027, NATIONAL_PM25_2035, SURFACE_WATER_2027

UNIT = "µg/m³"
SHOWN_UNITS = {"ug/m3": "µg/m³", "mg/m3": "mg/m³", "class": ""}
DISPLAY_TZ = ZoneInfo("Asia/Shanghai")  # national pages show Beijing time

CSS = """
:root { --ink:#1a202c; --muted:#4a5568; --faint:#718096; --line:#e2e8f0; --bg:#f4f6f9;
        --card:#fff; --accent:#1e4e8c; --good:#2f855a; --bad:#c53030; --grey:#a0aec0; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--ink);
       font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans",
             "WenQuanYi Micro Hei", sans-serif; }
a { color: var(--accent); }
header.top { background: var(--accent); color:#fff; }
header.top .bar { max-width:1320px; margin:0 auto; padding:10px 20px; display:flex;
                  align-items:center; gap:18px; flex-wrap:wrap; }
header.top .brand { font-weight:700; font-size:18px; color:#fff; text-decoration:none; }
header.top .sub { color:#c3d4ea; font-size:13px; }
header.top nav { margin-left:auto; display:flex; gap:6px; align-items:center; flex-wrap:wrap; }
header.top nav span { color:#c3d4ea; font-size:12px; margin-right:4px; }
header.top nav a { color:#fff; text-decoration:none; padding:2px 9px; border-radius:12px;
                   border:1px solid rgba(255,255,255,.35); font-size:13px; }
header.top nav a.on { background:#fff; color:var(--accent); font-weight:600; }
main { max-width:1320px; margin:0 auto; padding:14px 20px 28px; }
h1 { font-size:20px; margin:4px 0 12px; }
h1 small { font-size:13px; color:var(--faint); font-weight:400; margin-left:8px; }
h2 { font-size:15px; margin:0 0 6px; }
h3 { font-size:13px; margin:4px 0; color:var(--muted); }
.cards { display:grid; grid-template-columns:repeat(4, minmax(0, 1fr)); gap:12px;
         margin-bottom:12px; }
.card, .panel { background:var(--card); border:1px solid var(--line); border-radius:8px;
                padding:12px 14px; }
.card .label { color:var(--muted); font-size:12.5px; }
.card .big { font-size:32px; font-weight:700; line-height:1.15; margin:4px 0 2px;
             font-variant-numeric: tabular-nums; }
.card .big .unit { font-size:15px; font-weight:500; color:var(--muted); margin-left:4px; }
.card .note { color:var(--faint); font-size:12px; }
.good { color:var(--good); } .bad { color:var(--bad); } .na { color:var(--grey); }
.chips { display:flex; gap:6px; flex-wrap:wrap; margin-top:4px; }
.chip { font-size:11.5px; padding:1px 8px; border-radius:10px; border:1px solid var(--line);
        white-space:nowrap; }
.chip.good { background:#f0fff4; border-color:#9ae6b4; }
.chip.bad { background:#fff5f5; border-color:#feb2b2; }
.meter { position:relative; height:10px; background:#edf2f7; border-radius:5px; margin:6px 0 3px;
         overflow:visible; }
.meter .fill { height:100%; border-radius:5px; background:var(--good); }
.meter .fill.bad { background:#dd6b20; }
.meter .mark { position:absolute; top:-4px; width:2px; height:18px; background:var(--ink); }
.cards.status { grid-template-columns:repeat(5, minmax(0, 1fr)); }
.card .line { font-size:12.5px; color:var(--muted); margin-top:3px; }
.card .line b { color:var(--ink); font-variant-numeric: tabular-nums; }
.card .big.words { font-size:22px; padding:6px 0 4px; }
.provisional { display:inline-block; font-size:11.5px; padding:1px 8px; border-radius:10px;
               background:#fefcbf; color:#744210; border:1px solid #f6e05e; }
ul.cities { margin:4px 0 0; padding-left:18px; columns:6; font-size:12.5px; max-height:240px;
            overflow:auto; }
.grid2 { display:grid; grid-template-columns:minmax(0,1fr) minmax(0,1fr); gap:12px;
         margin-bottom:12px; }
.grid-rank { display:grid; grid-template-columns:minmax(0,7fr) minmax(0,5fr); gap:12px;
             margin-bottom:12px; }
.stack { display:grid; grid-template-columns:minmax(0,1fr); gap:12px; margin-bottom:12px; }
.panel .hint { color:var(--faint); font-size:12px; margin:-2px 0 4px; }
.chart { min-height:300px; }
.scroll { max-height:360px; overflow:auto; }
table { width:100%; border-collapse:collapse; font-size:12.5px; }
th, td { text-align:left; padding:4px 6px; border-bottom:1px solid var(--line);
         white-space:nowrap; }
th { position:sticky; top:0; background:#f7fafc; color:var(--muted); font-weight:600; }
td.num, th.num { text-align:right; font-variant-numeric: tabular-nums; }
td.wrap { white-space:normal; }
.dot { display:inline-block; width:9px; height:9px; border-radius:50%; margin-right:5px;
       vertical-align:baseline; }
.badge { font-size:11px; padding:1px 7px; border-radius:9px; font-weight:600; }
.badge.firing { background:#fed7d7; color:#9b2c2c; }
.badge.resolved { background:#c6f6d5; color:#276749; }
.badge.no_data { background:#e2e8f0; color:#4a5568; }
.aqi { border-radius:8px; padding:10px 14px; }
.aqi .big { font-size:40px; }
.legend { display:flex; flex-wrap:wrap; gap:4px 12px; font-size:12px; color:var(--muted);
          margin-top:4px; }
.legend i { display:inline-block; width:12px; height:12px; border-radius:2px;
            vertical-align:-2px; margin-right:4px; border:1px solid rgba(0,0,0,.15); }
.empty { background:var(--card); border:1px dashed #cbd5e0; border-radius:8px;
         padding:36px; text-align:center; color:var(--muted); }
.empty h1 { margin-top:0; }
footer { color:var(--faint); font-size:12px; margin-top:14px; }
code { background:#edf2f7; padding:0 4px; border-radius:3px; }
@media (max-width: 1000px) {
  .cards, .cards.status { grid-template-columns:repeat(2, minmax(0, 1fr)); }
  .grid2, .grid-rank { grid-template-columns:minmax(0,1fr); }
  ul.cities { columns:2; }
}
"""

DRAW_FIGURES = """
for (const el of document.querySelectorAll("[data-figure]")) {
  const figure = JSON.parse(document.getElementById(el.dataset.figure).textContent);
  Plotly.newPlot(el, figure.data, figure.layout,
                 {displaylogo: false, responsive: true,
                  modeBarButtonsToRemove: ["select2d", "lasso2d", "autoScale2d"]});
}
"""


def esc(value: object) -> str:
    """Text for HTML content or a quoted attribute."""
    return html.escape(str(value), quote=True)


def one_decimal(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def signed(value: float | None) -> str:
    return "—" if value is None else f"{value:+.1f}"


def _text_on(rgb: tuple[int, int, int]) -> str:
    """Black or white, whichever reads better on ``rgb``."""
    red, green, blue = rgb
    return "#1a202c" if 0.299 * red + 0.587 * green + 0.114 * blue > 150 else "#ffffff"


def station_href(station_id: str) -> str:
    return "/stations/" + quote(station_id, safe="")


class Page:
    """A page under construction: figures get an id and their JSON next to their element."""

    def __init__(self) -> None:
        self._figures = 0

    def figure(self, figure: go.Figure, testid: str) -> str:
        self._figures += 1
        data_id = f"figure-{self._figures}"
        return (
            f'<div class="chart" data-testid="{esc(testid)}" data-figure="{data_id}"></div>'
            f'<script type="application/json" id="{data_id}">{figures.figure_json(figure)}'
            "</script>"
        )

    def render(self, title: str, body: str, nav: str = "", plotly_src: str | None = None) -> str:
        script = ""
        if plotly_src is not None and self._figures:
            script = f'<script src="{esc(plotly_src)}"></script><script>{DRAW_FIGURES}</script>'
        return (
            '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            '<link rel="icon" href="data:,">'  # no favicon request
            f"<title>{esc(title)} · airwater</title><style>{CSS}</style></head><body>"
            '<header class="top"><div class="bar">'
            '<a class="brand" href="/">airwater</a>'
            '<span class="sub">air and surface water against the national targets</span>'
            f"{nav}</div></header>"
            f"<main>{body}</main>{script}</body></html>"
        )


def _year_nav(years: Sequence[int], chosen: int | None) -> str:
    if not years:
        return ""
    links = "".join(
        f'<a href="/?year={year}"{" class=on" if year == chosen else ""}>{year}</a>'
        for year in years
    )
    return f'<nav aria-label="year"><span>Year</span>{links}</nav>'


def _card(
    label: str, big: str, note: str = "", extra: str = "", css: str = "card", big_css: str = "big"
) -> str:
    return (
        f'<div class="{css}"><div class="label">{label}</div><div class="{big_css}">{big}</div>'
        f"{extra}<div class=note>{note}</div></div>"
    )


def _chip(text: str, good: bool | None) -> str:
    css = "chip" if good is None else ("chip good" if good else "chip bad")
    return f'<span class="{css}">{esc(text)}</span>'


def _table(headers: Sequence[tuple[str, str]], rows: Iterable[str], testid: str) -> str:
    head = "".join(f'<th class="{css}">{esc(name)}</th>' for name, css in headers)
    return (
        f'<div class="scroll"><table data-testid="{esc(testid)}"><thead><tr>{head}</tr>'
        f"</thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


# --- overview ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Overview:
    """What the overview shows for one year."""

    year: int
    years: Sequence[int]  # years with any daily value
    air: AirReport
    trend: Sequence[AirTrendPoint]
    water: WaterReport
    alerts: Sequence[AlertEvent] | None  # None: the outbox cannot be read
    station_names: dict[str, str]
    status: Status | None = None  # None: the year has not begun
    attaining: Sequence[RankedCity] = ()  # cities attaining all six pollutants, by rank

    @property
    def provisional(self) -> bool:
        return self.status is not None and self.status.provisional


def _national_cards(air: AirReport) -> str:
    national = air.national
    mean = national.annual_mean
    limit = air.annual_limit
    chips = ""
    if mean is not None:
        if limit is not None:
            chips += _chip(
                f"Grade II {limit:.0f}: {'met' if mean <= limit else 'above'}",
                national.meets_grade_ii,
            )
        chips += _chip(
            f"below 28 by 2027: {signed(national.gap_to_2027_target)}", air.meets_2027_target
        )
        chips += _chip(
            f"below 25 by 2035: {signed(national.gap_to_2035_target)}", air.meets_2035_target
        )
    css = "na" if mean is None else ("good" if national.meets_grade_ii else "bad")
    national_card = _card(
        f"National PM2.5 annual mean, {air.year}",
        f'<span class="{css}" data-testid="national-mean">{one_decimal(mean)}</span>'
        f'<span class="unit">{UNIT}</span>',
        f"mean of {national.cities or 0} cities with a valid year (HJ 663)"
        if mean is not None
        else esc("; ".join(national.coverage.reasons) or "no data"),
        f'<div class="chips">{chips}</div>',
    )
    gap = national.gap_to_2027_target
    gap_css = "na" if gap is None else ("good" if air.meets_2027_target else "bad")
    gap_card = _card(
        f"Gap to the {NATIONAL_PM25_2027.year} target (below {NATIONAL_PM25_2027.value:.0f})",
        f'<span class="{gap_css}" data-testid="gap-2027">{signed(gap)}</span>'
        f'<span class="unit">{UNIT}</span>',
        f"{NATIONAL_PM25_2035.year} target below {NATIONAL_PM25_2035.value:.0f}: "
        f"{signed(national.gap_to_2035_target)} {UNIT}",
    )
    assessed = air.cities_assessed
    share = air.share_cities_meeting_grade_ii
    limit_text = "—" if limit is None else f"{limit:.0f} {UNIT}"
    cities_card = _card(
        f"Cities meeting Grade II ({esc(limit_text)}, {esc(air.standard)})",
        f'<span data-testid="cities-meeting">{air.cities_meeting_grade_ii}</span>'
        f'<span class="unit">of <span data-testid="cities-assessed">{assessed}</span>'
        " assessed</span>",
        f"{one_decimal(share)} % of the cities with a valid year"
        if assessed
        else "no city has a valid year (324 valid days, every month valid)",
    )
    return national_card + gap_card + cities_card


def _water_card(water: WaterReport) -> str:
    share = water.excellent_share
    target = water.excellent_share_target
    meter = ""
    if share is not None:
        fill = "fill" if water.meets_target else "fill bad"
        meter = (
            f'<div class="meter" title="target {target:.0f} %">'
            f'<div class="{fill}" style="width:{min(share, 100):.1f}%"></div>'
            f'<div class="mark" style="left:{target:.1f}%"></div></div>'
        )
    css = "na" if share is None else ("good" if water.meets_target else "bad")
    return _card(
        f"Surface water in Class I–III, {water.year} (target ≈{target:.0f} % by "
        f"{SURFACE_WATER_2027.year})",
        f'<span class="{css}" data-testid="excellent-share">{one_decimal(share)}</span>'
        '<span class="unit">%</span>',
        f"{water.sections_assessed} sections assessed · worse than V: "
        f"{one_decimal(water.worse_than_v_share)} %"
        if water.sections_assessed
        else "no section has data this year",
        meter,
    )


# --- status of the year (GET /v1/status) ------------------------------------------------

NOT_ASSESSED = "not assessed"
PERCENT = '<span class="unit">%</span>'
POLLUTANT_NAMES = {
    "so2": "SO₂",
    "no2": "NO₂",
    "pm10": "PM10",
    "pm25": "PM2.5",
    "co": "CO",
    "o3": "O₃",
}


def short_day(day: date) -> str:
    """1 Jan, 6 Dec."""
    return f"{day.day} {day:%b}"


def _figure(testid: str, text: str | None, css: str = "", unit: str = "") -> str:
    """A number a test reads in its own element, followed by ``unit`` (HTML); ``not
    assessed`` (grey, no unit) when null."""
    if text is None:
        return f'<span class="na" data-testid="{esc(testid)}">{NOT_ASSESSED}</span>'
    attribute = f' class="{css}"' if css else ""
    return f'<span{attribute} data-testid="{esc(testid)}">{esc(text)}</span>{unit}'


def _decimal(value: float | None, decimals: int = 1) -> str | None:
    return None if value is None else f"{value:.{decimals}f}"


def _change(testid: str, value: float | None, lower_is_better: bool, unit: str) -> str:
    """A same-period change with an arrow, green when it goes the better way."""
    if value is None:
        return _figure(testid, None)
    arrow = "▼" if value < 0 else "▲" if value > 0 else "="
    better = value < 0 if lower_is_better else value > 0
    css = "" if value == 0 else ("good" if better else "bad")
    return f'<span class="{css}">{arrow} {_figure(testid, f"{value:+.1f}", unit=unit)}</span>'


def _rest_of_year(rest: RestOfYearOut | None, provisional: bool, target: str) -> str:
    """What the rest of the year must average, in words."""
    if not provisional:
        return '<span data-testid="status-rest-of-year">the year is complete</span>'
    if rest is None:
        return (
            '<span data-testid="status-rest-of-year">rest of the year: '
            f'<span class="na">{NOT_ASSESSED}</span></span>'
        )
    if rest.days_left == 0:
        return '<span data-testid="status-rest-of-year">no day of the year is left</span>'
    if not rest.reachable or rest.must_average is None:
        return (
            '<span data-testid="status-rest-of-year" class="bad">'
            f"{esc(target)} cannot be met this year</span>"
        )
    return (
        '<span data-testid="status-rest-of-year">the rest of the year must average '
        f"<b>{esc(rest.comparator)} "
        f"{_figure('status-rest-must-average', f'{rest.must_average:.1f}')} {UNIT}</b> over "
        f"{_figure('status-rest-days-left', str(rest.days_left))} days</span>"
    )


def _status_cards(status: Status) -> str:
    air, water = status.air, status.water
    so_far = " so far" if status.provisional else ""
    last = status.same_period_start.year
    span = f"{short_day(status.period_start)} – {short_day(status.period_end)}"
    period = (
        f'<span class="provisional" data-testid="status-provisional">provisional, {span}</span>'
        if status.provisional
        else f"{span}, the whole year"
    )
    pm25_css = "" if air.pm25_below_target is None else ("good" if air.pm25_below_target else "bad")
    pm25 = _card(
        f"National PM2.5, {status.year}{so_far}",
        _figure("status-pm25", _decimal(air.pm25), pm25_css, f'<span class="unit">{UNIT}</span>'),
        period,
        f'<div class="line">same period {last}: '
        f"<b>{_figure('status-pm25-same-period', _decimal(air.pm25_same_period))}</b>"
        f"{'' if air.pm25_same_period is None else ' ' + UNIT} · "
        f"{_change('status-pm25-change', air.pm25_change_percent, True, ' %')}</div>",
    )
    target_text = f"below {air.pm25_target:.0f} {UNIT}"
    verdict = (
        None
        if air.pm25_below_target is None
        else ("below" if air.pm25_below_target else "not below")
    )
    target = _card(
        f"{NATIONAL_PM25_2027.year} target: national PM2.5 below "
        f"{_figure('status-pm25-target', f'{air.pm25_target:.0f}')} {UNIT}",
        _figure("status-pm25-target-verdict", verdict, pm25_css),
        _rest_of_year(air.pm25_rest_of_year, status.provisional, f"the target {target_text}"),
        big_css="big words",
    )
    good = _card(
        "Good days (daily AQI ≤ 100), mean share of the cities",
        _figure("status-good-share", _decimal(air.good_day_share), unit=PERCENT),
        f"same period {last}: "
        + _figure(
            "status-good-share-same-period", _decimal(air.good_day_share_same_period), "", " %"
        ),
        '<div class="line">heavily polluted city-days (AQI &gt; 200): '
        f"<b>{_figure('status-heavy-days', _count(air.heavy_days))}</b>, same period "
        f"<b>{_figure('status-heavy-days-same-period', _count(air.heavy_days_same_period))}"
        "</b></div>",
    )
    attaining = _card(
        "Cities attaining all six pollutants (Grade II)",
        _figure("status-cities-attaining", str(air.cities_attaining))
        + '<span class="unit">of '
        + _figure("status-cities-assessed", str(air.cities_assessed))
        + " assessed</span>",
        "SO₂, NO₂, PM10, PM2.5, CO, O₃: a city is assessed when all six statistics are valid",
    )
    water_css = "" if water.meets_target is None else ("good" if water.meets_target else "bad")
    meter = ""
    if water.excellent_share is not None:
        fill = "fill" if water.meets_target else "fill bad"
        meter = (
            f'<div class="meter" title="target {water.target:.0f} %">'
            f'<div class="{fill}" style="width:{min(water.excellent_share, 100):.1f}%"></div>'
            f'<div class="mark" style="left:{water.target:.1f}%"></div></div>'
        )
    water_card = _card(
        f'Surface water in Class I–III, <span data-testid="status-water-months">'
        f"{esc(water.months)}</span> {status.year}",
        _figure("status-water-share", _decimal(water.excellent_share), water_css, PERCENT),
        f"same months {last}: "
        + _figure(
            "status-water-share-same-period", _decimal(water.same_period_excellent_share), "", " %"
        )
        + f" ({_change('status-water-change', water.change_points, False, ' points')}) · "
        + f"target {_figure('status-water-target', f'{water.target:.0f}')} % · "
        + f"{water.sections_assessed} sections",
        meter,
    )
    return (
        f'<section class="cards status" data-testid="status">'
        f"{pm25}{target}{good}{attaining}{water_card}</section>"
    )


def _count(value: int | None) -> str | None:
    return None if value is None else str(value)


def _ranking_rows(cities: Sequence[RankedCity]) -> list[str]:
    pm25_decimals = STATISTIC_DECIMALS["pm25"]
    return [
        f'<tr data-city="{esc(c.city_code)}"><td class=num data-testid="rank">{c.rank}</td>'
        f'<td data-testid="city">{esc(c.name)}</td><td>{esc(c.province or "")}</td>'
        f'<td class=num data-testid="index">{c.index:.{INDEX_DECIMALS}f}</td>'
        f'<td data-testid="contributor" data-pollutant="{esc(c.largest_contributor)}">'
        f"{esc(POLLUTANT_NAMES.get(c.largest_contributor, c.largest_contributor))}</td>"
        f'<td class=num data-testid="pm25">{esc(_decimal(c.pm25, pm25_decimals) or "—")}</td>'
        "</tr>"
        for c in cities
    ]


RANKING_COLUMNS = [
    ("#", "num"),
    ("city", ""),
    ("province", ""),
    ("index", "num"),
    ("main contributor", ""),
    (f"PM2.5 {UNIT}", "num"),
]


def _ranking_panel(overview: Overview, status: Status) -> str:
    air = status.air
    so_far = " so far" if status.provisional else ""
    if air.best:
        tables = (
            '<div class="grid2" style="margin-bottom:0"><div><h3>Best 10</h3>'
            + _table(RANKING_COLUMNS, _ranking_rows(air.best), "ranking-best")
            + "</div><div><h3>Worst 10</h3>"
            + _table(RANKING_COLUMNS, _ranking_rows(air.worst), "ranking-worst")
            + "</div></div>"
        )
    else:
        tables = (
            f'<p class="hint" data-testid="ranking-none">No city is ranked in {status.year}'
            f"{so_far}: none has all six statistics valid ({NOT_ASSESSED}).</p>"
        )
    names = "".join(
        f'<li data-city="{esc(c.city_code)}">{esc(c.name)}'
        f"{' <small>' + esc(c.province) + '</small>' if c.province else ''}</li>"
        for c in overview.attaining
    )
    attaining = (
        f'<ul class="cities" data-testid="attaining-cities">{names}</ul>'
        if names
        else '<p class="hint" data-testid="attaining-none">'
        + ("No city is assessed yet." if not air.cities_assessed else "No city attains all six.")
        + "</p>"
    )
    return (
        '<section class="stack">'
        f'<div class="panel"><h2>Cities ranked by comprehensive index, {status.year}{so_far}'
        "</h2>"
        '<p class="hint">Σ of the six statistics ÷ their Grade II limits; lower is better. '
        "The main contributor is the pollutant with the largest term; PM2.5 as published "
        "(whole µg/m³).</p>"
        f"{tables}</div>"
        f'<div class="panel"><h2>Attaining all six pollutants: '
        f'<span data-testid="attaining-count">{len(overview.attaining)}</span> of '
        f"{air.cities_assessed} cities assessed</h2>"
        '<p class="hint">Every judged statistic within Grade II of '
        f"the standard in force; a city missing a pollutant or a valid statistic is "
        f"{NOT_ASSESSED}.</p>{attaining}</div></section>"
    )


def _city_rows(air: AirReport, provisional: bool) -> list[str]:
    rows = []
    ranked = figures.ranked_cities(air)
    unranked = [c for c in air.cities if c.annual_mean is None]
    for rank, city in enumerate([*ranked, *unranked], start=1):
        status = figures.city_status(city, provisional)
        colour = figures.status_colour(status)
        rows.append(
            f'<tr data-city="{esc(city.id)}"><td class=num>'
            f"{rank if city.annual_mean is not None else ''}</td>"
            f"<td>{esc(city.name)}</td><td>{esc(city.province or '')}</td>"
            f'<td class=num data-testid="city-mean">{one_decimal(city.annual_mean)}</td>'
            f"<td class=num>{city.valid_days}</td><td class=num>{city.stations or 0}</td>"
            f'<td><span class="dot" style="background:{colour}"></span>{esc(status)}</td></tr>'
        )
    return rows


def _alert_rows(alerts: Sequence[AlertEvent], names: dict[str, str]) -> list[str]:
    rows = []
    for event in alerts:
        moment = event.observed_at or event.created_at
        name = names.get(event.station_id, "")
        target = "daily AQI" if event.target == "daily_aqi" else event.target.replace("_", " ")
        what = target if event.parameter is None else f"{event.parameter} {target}"
        shown_unit = SHOWN_UNITS.get(event.unit or "", event.unit or "")
        unit = f" {shown_unit}" if shown_unit else ""
        rows.append(
            f"<tr><td>{esc(moment.astimezone(DISPLAY_TZ).strftime('%Y-%m-%d %H:%M'))}</td>"
            f'<td><span class="badge {esc(event.kind)}">{esc(event.kind)}</span></td>'
            f'<td class=wrap><a href="{esc(station_href(event.station_id))}">'
            f"{esc(event.station_id)}</a> {esc(name)}</td><td class=wrap>{esc(what)}</td>"
            f"<td class=num>{esc(one_decimal(event.value) + unit)}</td>"
            f"<td class=num>{esc(one_decimal(event.threshold))}</td></tr>"
        )
    return rows


def _alerts_panel(overview: Overview) -> str:
    if overview.alerts is None:
        body = '<p class="hint">The alert outbox is not set up in this database.</p>'
    elif not overview.alerts:
        body = '<p class="hint">No alert events yet.</p>'
    else:
        body = _table(
            [
                ("time (Beijing)", ""),
                ("kind", ""),
                ("station", ""),
                ("what", ""),
                ("value", "num"),
                ("limit", "num"),
            ],
            _alert_rows(overview.alerts, overview.station_names),
            "alerts",
        )
    return f'<div class="panel"><h2>Recent alerts</h2>{body}</div>'


def _stations_panel(air: AirReport, provisional: bool) -> str:
    so_far = " so far" if provisional else ""
    rows = [
        f'<tr><td><a href="{esc(station_href(s.id))}">{esc(s.id)}</a></td>'
        f"<td>{esc(s.name)}</td><td class=num>{one_decimal(s.annual_mean)}</td>"
        f"<td class=num>{s.valid_days}</td></tr>"
        for s in sorted(air.stations, key=lambda s: s.id)
    ]
    body = (
        _table(
            [
                ("station", ""),
                ("name", ""),
                (f"{'mean so far' if provisional else 'annual mean'} {UNIT}", "num"),
                ("valid days", "num"),
            ],
            rows,
            "stations",
        )
        if rows
        else '<p class="hint">No air station is registered.</p>'
    )
    return (
        f'<div class="panel"><h2>Air stations, PM2.5 {air.year}{so_far}</h2>'
        '<p class="hint">Open a station for its hourly series, daily means and AQI.</p>'
        f"{body}</div>"
    )


def _heading(overview: Overview) -> str:
    status = overview.status
    if status is None:
        return (
            f"<h1>Where the country stands, {overview.year}"
            f"<small>{esc(overview.air.standard)} · annual values by HJ 663 from valid daily "
            "means</small></h1>"
        )
    so_far = " so far" if status.provisional else ""
    as_of = status.as_of.astimezone(DISPLAY_TZ).strftime("%Y-%m-%d %H:%M")
    return (
        f"<h1>Where the country stands, {overview.year}{so_far}"
        f"<small>{esc(overview.air.standard)} · HJ 663 statistics of valid daily means · "
        f"data as of {esc(as_of)} Beijing time</small></h1>"
    )


def overview_page(overview: Overview, plotly_src: str) -> str:
    air, water = overview.air, overview.water
    provisional = overview.provisional
    so_far = " so far" if provisional else ""
    page = Page()
    limit = "" if air.annual_limit is None else f" (Grade II {air.annual_limit:.0f} {UNIT})"
    ranking = (
        page.figure(figures.city_ranking(air, provisional), "city-chart")
        if figures.ranked_cities(air)
        else f'<p class="hint">No city has PM2.5 data in {air.year}.</p>'
    )
    water_chart = (
        page.figure(figures.water_distribution(water), "water-chart")
        if water.sections_assessed
        else f'<p class="hint">No surface-water section has data in {water.year}.</p>'
    )
    trend = (
        page.figure(figures.national_trend(overview.trend), "trend-chart")
        if overview.trend
        else '<p class="hint">No complete year with PM2.5 data yet.</p>'
    )
    status = overview.status
    # a year in progress has no annual values yet: the status band stands for the annual cards
    annual_cards = (
        ""
        if provisional
        else f'<section class="cards">{_national_cards(air)}{_water_card(water)}</section>'
    )
    colour_hint = (
        "Year in progress: each city's mean of the days so far against the Grade II annual "
        "limit (green within, red above); the year is judged once it is complete."
        if provisional
        else "Green: within the Grade II annual limit; red: above it; grey: fewer than 324 "
        "valid days or a month short of data."
    )
    body = (
        _heading(overview)
        + ("" if status is None else _status_cards(status))
        + annual_cards
        + ("" if status is None else _ranking_panel(overview, status))
        + '<section class="grid2">'
        '<div class="panel"><h2>National PM2.5 annual mean by year</h2>'
        '<p class="hint">Complete years. Bars: mean of the cities with a valid year; lines: '
        "the Grade II annual limit in force and the 2027 and 2035 targets.</p>"
        f"{trend}</div>"
        f'<div class="panel"><h2>Surface-water sections by class (GB 3838-2002), {water.year}'
        f"{so_far}</h2>"
        f'<p class="hint">Class I–III share {one_decimal(water.excellent_share)} % against '
        f"about {water.excellent_share_target:.0f} % by {SURFACE_WATER_2027.year}.</p>"
        f"{water_chart}</div></section>"
        '<section class="grid-rank">'
        f'<div class="panel"><h2>Cities ranked by PM2.5 '
        f"{'mean so far' if provisional else 'annual mean'}, {air.year}{esc(limit)}</h2>"
        f'<p class="hint">{colour_hint}</p>'
        f"{ranking}</div>"
        '<div class="panel"><h2>City table</h2>'
        + _table(
            [
                ("#", "num"),
                ("city", ""),
                ("province", ""),
                (UNIT, "num"),
                ("valid days", "num"),
                ("stations", "num"),
                ("Grade II" + so_far, ""),
            ],
            _city_rows(air, provisional),
            "city-table",
        )
        + "</div></section>"
        + '<section class="grid2">'
        + _alerts_panel(overview)
        + _stations_panel(air, provisional)
        + "</section>"
        + _footer(overview.year)
    )
    return page.render(
        f"PM2.5 and water {overview.year}{so_far}",
        body,
        _year_nav(overview.years, overview.year),
        plotly_src,
    )


def _footer(year: int | None) -> str:
    api = (
        f" The same numbers as JSON: <code>GET /v1/status?year={year}</code>, "
        f"<code>GET /v1/compliance/air/assessment?year={year}</code>, "
        f"<code>GET /v1/compliance/air?year={year}</code> and "
        f"<code>GET /v1/compliance/water?year={year}</code> (API key), OpenAPI at "
        '<a href="/docs">/docs</a>.'
        if year is not None
        else ' The REST API is described at <a href="/docs">/docs</a>.'
    )
    return (
        "<footer>The dashboard needs no login: it shows aggregates (annual, daily and hourly "
        "means, AQI, water classes) and alert events without subscribers or addresses."
        f"{api}</footer>"
    )


# --- station ----------------------------------------------------------------------------


@dataclass(frozen=True)
class LatestAqi:
    """An AQI (hourly real-time or daily) of a station at its latest period with data."""

    when: str  # local time or day, as shown
    aqi: Aqi


@dataclass(frozen=True)
class StationView:
    """What the station page shows."""

    station: Station
    hourly: Sequence[AggregateValue]  # PM2.5, the last 7 days with data
    days: Sequence[figures.DailyPm25]  # PM2.5, the last 90 days with data
    latest_hourly: LatestAqi | None
    latest_daily: LatestAqi | None
    water_section: WaterSection | None = None
    water_year: int | None = None


def _aqi_card(latest: LatestAqi | None, what: str, testid: str) -> str:
    if latest is None:
        return _card(what, '<span class="na">—</span>', "no valid data yet")
    aqi = latest.aqi
    background = aqi.colour.hex
    ink = _text_on(aqi.colour.rgb)
    primary = ", ".join(aqi.primary_pollutants or ()) or "none (AQI ≤ 50)"
    return (
        f'<div class="card aqi" style="background:{background};color:{ink}">'
        f'<div class="label" style="color:{ink}">{esc(what)} · {esc(latest.when)}</div>'
        f'<div class="big"><span data-testid="{esc(testid)}">{esc(aqi.display)}</span></div>'
        f'<div><b data-testid="{esc(testid)}-category">{esc(aqi.category)}</b> '
        f'<span lang="zh">{esc(aqi.category_zh)}</span> · level {aqi.level}</div>'
        f'<div class="note" style="color:{ink}">primary pollutant: {esc(primary)} · '
        f"{esc(aqi.version)}</div></div>"
    )


def _legend() -> str:
    items = "".join(
        f'<span><i style="background:{figures.hex_colour(c.colour)}"></i>'
        f"{esc(c.name)} {esc(c.name_zh)} "
        f"({'≤ ' + str(c.upper) if c.upper is not None else '> 300'})</span>"
        for c in CATEGORIES
    )
    return f'<div class="legend">{items}</div>'


def _station_heading(station: Station) -> str:
    place = ", ".join(p for p in (station.city, station.province) if p)
    kind = station.kind.replace("_", " ")
    details = " · ".join(
        esc(p)
        for p in (
            station.station_id,
            kind,
            place,
            station.timezone,
            "" if station.active else "inactive",
        )
        if p
    )
    return (
        f'<h1><span data-testid="station-name">{esc(station.name)}</span>'
        f"<small>{details}</small></h1>"
    )


def _latest_pm25_card(view: StationView) -> str:
    valid = [h for h in view.hourly if h.coverage.valid and h.mean is not None]
    if not valid:
        return _card("Latest PM2.5 hourly mean", '<span class="na">—</span>', "no valid hour")
    last = valid[-1]
    return _card(
        "Latest PM2.5 hourly mean",
        f'<span data-testid="latest-pm25">{one_decimal(last.mean)}</span>'
        f'<span class="unit">{UNIT}</span>',
        esc(figures.local_time(last.period_start, view.station.timezone)),
    )


def _period_card(view: StationView) -> str:
    valid_days = [d for d in view.days if d.valid and d.mean is not None]
    if not valid_days:
        return _card("PM2.5, last 90 days", '<span class="na">—</span>', "no valid day")
    over = sum(
        1
        for d in valid_days
        if d.limit_24h is not None and d.mean is not None and d.mean > d.limit_24h
    )
    mean = sum(d.mean for d in valid_days if d.mean is not None) / len(valid_days)
    return _card(
        "PM2.5 mean of the valid days shown",
        f'<span data-testid="period-mean">{one_decimal(mean)}</span>'
        f'<span class="unit">{UNIT}</span>',
        f"{len(valid_days)} valid days · {over} above the Grade II 24-hour limit",
    )


METHOD_NOTES = {
    "parameters": "single-factor class of the annual means of the items (GB 3838-2002)",
    "reported_class": "median of the monthly classes; a month counts its worst reported class",
}


def _water_panel(view: StationView) -> str:
    section = view.water_section
    if view.station.kind != "surface_water":
        return (
            '<div class="empty"><h2>No dashboard view</h2><p>The dashboard shows air stations '
            "and surface-water sections; this station's data are in the REST API.</p></div>"
        )
    if section is None or section.water_class is None:
        return (
            '<div class="empty"><h2>No annual class yet</h2>'
            "<p>This surface-water section has no data in a year with water reports.</p></div>"
        )
    colour = figures.WATER_CLASS_COLOURS[section.water_class]
    rows = [
        f"<tr><td>{esc(name)}</td><td class=num>{value:.3f}</td></tr>"
        for name, value in section.annual_means.items()
    ]
    means = (
        _table([("item", ""), ("annual mean, mg/L", "num")], rows, "water-means")
        if rows
        else '<p class="hint">This section reports its class, not the items.</p>'
    )
    deciding = ", ".join(section.deciding_parameters)
    return (
        '<section class="grid2"><div class="card">'
        f'<div class="label">Annual class {view.water_year} (GB 3838-2002)</div>'
        f'<div class="big"><span class="dot" style="background:{colour};width:22px;'
        f'height:22px;vertical-align:-2px"></span>Class '
        f'<span data-testid="water-class">{esc(section.class_name)}</span></div>'
        f'<div class="note">{esc(METHOD_NOTES.get(section.method, section.method))} · '
        f"{section.months_with_data} months with data"
        f"{' · deciding: ' + esc(deciding) if deciding else ''}</div></div>"
        f'<div class="panel"><h2>Annual means</h2>{means}</div></section>'
    )


def station_page(view: StationView, plotly_src: str) -> str:
    station = view.station
    page = Page()
    heading = _station_heading(station)
    if station.kind != "air":
        body = heading + _water_panel(view)
    elif not view.hourly and not view.days:
        body = heading + (
            '<div class="empty"><h2>No data yet</h2>'
            "<p>This station has not reported any PM2.5 hour yet. Readings arrive over MQTT "
            f"on <code>stations/{esc(station.station_id)}/readings</code> or through "
            "<code>POST /v1/readings</code>.</p></div>"
        )
    else:
        hourly = (
            page.figure(figures.hourly_series(view.hourly, station.timezone), "hourly-chart")
            if view.hourly
            else '<p class="hint">No hourly values in the last 7 days with data.</p>'
        )
        daily = (
            page.figure(figures.daily_series(view.days, CATEGORIES), "daily-chart")
            if view.days
            else '<p class="hint">No daily values in the last 90 days with data.</p>'
        )
        body = (
            heading
            + '<section class="cards">'
            + _aqi_card(view.latest_hourly, "Real-time AQI (hourly)", "latest-aqi")
            + _aqi_card(view.latest_daily, "Daily AQI", "daily-aqi")
            + _latest_pm25_card(view)
            + _period_card(view)
            + "</section>"
            + '<section class="grid2">'
            '<div class="panel"><h2>PM2.5 hourly means, last 7 days with data</h2>'
            f'<p class="hint">Station time ({esc(station.timezone)}); an hour is valid with '
            "45 minutes of data (GB 3095).</p>"
            f"{hourly}</div>"
            '<div class="panel"><h2>PM2.5 daily means, last 90 days with data</h2>'
            '<p class="hint">Colour: HJ 633 category of the day\'s PM2.5 individual AQI; '
            "dashed: the Grade II 24-hour limit in force.</p>"
            f"{daily}{_legend()}</div></section>"
        )
    body += (
        f'<p><a href="{esc(station_href(station.station_id))}/review" data-testid="review-link">'
        "Review this station's data: quality flags, invalidate or restore hours, audit log →"
        '</a></p><p><a href="/">← national overview</a></p>' + _footer(None)
    )
    return page.render(station.name, body, "", plotly_src)


# --- no data and errors -----------------------------------------------------------------


def no_data_page(stations: int) -> str:
    registered = (
        f"{stations} stations are registered but none has reported a daily value yet."
        if stations
        else "No station is registered yet."
    )
    body = (
        '<div class="empty" data-testid="no-data"><h1>No data yet</h1>'
        f"<p>{esc(registered)}</p>"
        "<p>Stations publish readings over MQTT (<code>stations/{id}/readings</code>) or "
        "<code>POST /v1/readings</code>; the demo (<code>airwater run</code>) starts simulated "
        "stations and backfills a past year. This page fills in as daily values arrive.</p>"
        "</div>" + _footer(None)
    )
    return Page().render("No data yet", body)


def message_page(title: str, message: str, years: Sequence[int] = ()) -> str:
    """A page that explains a 4xx/5xx in words, with links back."""
    links = ""
    if years:
        links = (
            "<p>Years with data: "
            + ", ".join(f'<a href="/?year={y}">{y}</a>' for y in years)
            + "</p>"
        )
    body = (
        f'<div class="empty" data-testid="message"><h1>{esc(title)}</h1><p>{esc(message)}</p>'
        f'{links}<p><a href="/">← national overview</a></p></div>'
    )
    return Page().render(title, body)


def format_day_or_hour(moment: datetime, timezone: str, hourly: bool) -> str:
    local = moment.astimezone(ZoneInfo(timezone))
    return local.strftime("%Y-%m-%d %H:00") if hourly else local.strftime("%Y-%m-%d")
