"""Plotly figures of the dashboard, built in Python from the same report objects the REST API
returns; the page hands ``figure_json(...)`` to ``Plotly.newPlot`` in the browser.

Plotly renders a small subset of HTML inside its text (``<b>``, ``<br>``, entities), so every
name that comes from the station registry is entity-escaped before it becomes a label.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import plotly.graph_objects as go

from schemas.reports import AirAnnual, AirReport, AirTrendPoint, WaterReport
from schemas.series import AggregateValue
from standards.aqi import AqiCategory, aqi_category, aqi_version_in_force, iaqi
from standards.assessment import published
from standards.limits import limit_set_in_force
from standards.targets import NATIONAL_PM25_2027, NATIONAL_PM25_2035
from standards.water import CLASS_NAMES

FONT = (
    "system-ui, -apple-system, 'Segoe UI', Roboto, 'Noto Sans', 'WenQuanYi Micro Hei', sans-serif"
)
MEETS = "#2f855a"  # green: within the Grade II limit
EXCEEDS = "#c53030"  # red: above it
NOT_ASSESSED = "#a0aec0"  # grey: too little data to judge
LIMIT_LINE = "#1a202c"
TARGET_2027 = "#dd6b20"
TARGET_2035 = "#2b6cb0"
# Colours conventionally used for GB 3838 classes in Chinese water bulletins.
WATER_CLASS_COLOURS = {
    1: "#1e64c8",
    2: "#2fa7e0",
    3: "#38a169",
    4: "#ecc94b",
    5: "#ed8936",
    6: "#c53030",
}
UNIT = "µg/m³"


def label(text: str) -> str:
    """A registry name made safe for Plotly text (which reads a few HTML tags)."""
    return html.escape(text, quote=False)


def hex_colour(rgb: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def figure_json(figure: go.Figure) -> str:
    """The figure as JSON that can sit inside a <script> element."""
    # plotly already writes < > / as \u escapes; this keeps it so whatever the encoder
    return figure.to_json().replace("</", "<\\/")


def _layout(figure: go.Figure, height: int, y_title: str) -> go.Figure:
    figure.update_layout(
        template="plotly_white",
        height=height,
        margin={"l": 56, "r": 16, "t": 28, "b": 40},
        font={"family": FONT, "size": 12, "color": "#2d3748"},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "x": 0, "font": {"size": 11}},
        yaxis={"title": {"text": y_title}, "rangemode": "tozero"},
        hoverlabel={"font": {"family": FONT}},
        bargap=0.25,
    )
    return figure


def _segments(
    xs: Sequence[float], ys: Sequence[float | None], half_width: float
) -> tuple[list[float | None], list[float | None]]:
    """A short horizontal segment at each (x, y), joined into one line with gaps."""
    seg_x: list[float | None] = []
    seg_y: list[float | None] = []
    for x, y in zip(xs, ys, strict=True):
        if y is None:
            continue
        seg_x += [x - half_width, x + half_width, None]
        seg_y += [y, y, None]
    return seg_x, seg_y


def national_trend(points: Sequence[AirTrendPoint]) -> go.Figure:
    """National PM2.5 annual mean per year as bars, with the Grade II annual limit in force
    each year and the 2027 (28) and 2035 (25) targets as reference lines."""
    years = [p.year for p in points]
    means = [p.national_annual_mean for p in points]
    colours = [
        NOT_ASSESSED
        if m is None or not p.national_valid
        else MEETS
        if p.annual_limit is None or m <= p.annual_limit
        else EXCEEDS
        for p, m in zip(points, means, strict=True)
    ]
    figure = go.Figure()
    figure.add_bar(
        x=years,
        y=means,
        marker_color=colours,
        width=min(0.6, 0.15 * max(len(years), 1) + 0.2),  # one or two years: not a wall
        text=["" if m is None else f"{m:.1f}" for m in means],
        textposition="inside",
        insidetextanchor="end",
        textfont={"color": "#ffffff", "size": 13},
        name="National annual mean",
        hovertemplate="%{x}: %{y:.1f} " + UNIT + "<extra></extra>",
        showlegend=False,
    )
    lo, hi = (min(years) - 0.6, max(years) + 0.6) if years else (0.0, 1.0)
    limit_x, limit_y = _segments(years, [p.annual_limit for p in points], 0.45)
    figure.add_scatter(
        x=limit_x,
        y=limit_y,
        mode="lines",
        line={"color": LIMIT_LINE, "width": 2},
        name="Grade II limit in force",
        hovertemplate="Grade II annual limit: %{y:.0f} " + UNIT + "<extra></extra>",
    )
    for target, colour in ((NATIONAL_PM25_2027, TARGET_2027), (NATIONAL_PM25_2035, TARGET_2035)):
        figure.add_scatter(
            x=[lo, hi],
            y=[target.value, target.value],
            mode="lines",
            line={"color": colour, "width": 2, "dash": "dash"},
            name=f"{target.year} target: below {target.value:.0f}",
            hovertemplate=f"{target.year} target: below {target.value:.0f} {UNIT}<extra></extra>",
        )
    top = max([m for m in means if m is not None] + [p.annual_limit or 0 for p in points] + [35])
    _layout(figure, 330, f"PM2.5 {UNIT}")
    figure.update_layout(
        xaxis={"tickmode": "array", "tickvals": years, "range": [lo, hi], "tickformat": "d"},
        yaxis={"range": [0, top * 1.18]},
    )
    return figure


def city_status(city: AirAnnual, provisional: bool = False) -> str:
    """How a city stands against the Grade II annual limit: meets / above / no valid year;
    in a year in progress its mean so far (published, whole µg/m³) against the limit:
    within so far / above so far / no data."""
    if provisional:
        shown = published(city.parameter, city.annual_mean)
        if shown is None or city.annual_limit is None:
            return "no data"
        return "within so far" if shown <= city.annual_limit else "above so far"
    if city.annual_mean is None or not city.coverage.valid or city.meets_grade_ii is None:
        return "no valid year"
    return "meets" if city.meets_grade_ii else "above"


STATUS_COLOURS = {
    "meets": MEETS,
    "within so far": MEETS,
    "above": EXCEEDS,
    "above so far": EXCEEDS,
}


def status_colour(status: str) -> str:
    """The colour of a city_status: green within the limit, red above, grey not judged."""
    return STATUS_COLOURS.get(status, NOT_ASSESSED)


def ranked_cities(report: AirReport) -> list[AirAnnual]:
    """Cities with an annual mean, cleanest first (then by name)."""
    with_mean = [c for c in report.cities if c.annual_mean is not None]
    return sorted(with_mean, key=lambda c: (c.annual_mean, c.name, c.id))


def _city_labels(cities: Sequence[AirAnnual]) -> list[str]:
    names = [c.name for c in cities]
    return [label(c.name if names.count(c.name) == 1 else f"{c.name} ({c.id})") for c in cities]


LEGEND = {
    "meets": "meets Grade II",
    "above": "above Grade II",
    "no valid year": "no valid year",
    "within so far": "within Grade II so far",
    "above so far": "above Grade II so far",
}


def city_ranking(report: AirReport, provisional: bool = False) -> go.Figure:
    """Cities' PM2.5 annual means (so far, in a year in progress), cleanest first, coloured
    by the Grade II annual limit."""
    cities = ranked_cities(report)
    labels = _city_labels(cities)
    statuses = [city_status(c, provisional) for c in cities]
    figure = go.Figure()
    for status, name in LEGEND.items():
        chosen = [i for i, found in enumerate(statuses) if found == status]
        if not chosen:
            continue
        figure.add_bar(
            x=[labels[i] for i in chosen],
            y=[cities[i].annual_mean for i in chosen],
            marker_color=status_colour(status),
            name=name,
            text=[f"{cities[i].annual_mean:.1f}" for i in chosen] if len(cities) <= 30 else None,
            textposition="inside",
            insidetextanchor="end",
            textfont={"color": "#ffffff"},
            customdata=[[label(cities[i].province or ""), cities[i].valid_days] for i in chosen],
            hovertemplate="%{x} %{customdata[0]}<br>%{y:.1f} "
            + UNIT
            + " · %{customdata[1]} valid days<extra></extra>",
        )
    if report.annual_limit is not None:
        figure.add_hline(
            y=report.annual_limit,
            line={"color": LIMIT_LINE, "width": 2},
            annotation_text=f"Grade II {report.annual_limit:.0f}",
            annotation_position="top left",
        )
    top = max([c.annual_mean or 0 for c in cities] + [report.annual_limit or 0])
    _layout(figure, 360, f"PM2.5 {'mean so far' if provisional else 'annual mean'}, {UNIT}")
    figure.update_layout(
        barmode="overlay",
        # a handful of cities: narrow bars rather than walls
        bargap=0.25 if len(cities) > 6 else 0.6,
        yaxis={"range": [0, top * 1.12]},
        xaxis={
            "categoryorder": "array",
            "categoryarray": labels,
            "tickangle": -45 if len(labels) > 8 else 0,
            "automargin": True,
        },
    )
    return figure


def water_distribution(report: WaterReport) -> go.Figure:
    """Sections per GB 3838 class (I … worse than V)."""
    classes = list(range(1, 7))
    counts = [report.distribution.get(CLASS_NAMES[c], 0) for c in classes]
    total = sum(counts)
    figure = go.Figure()
    figure.add_bar(
        x=[CLASS_NAMES[c] if c < 6 else "worse than V" for c in classes],
        y=counts,
        marker_color=[WATER_CLASS_COLOURS[c] for c in classes],
        text=[str(n) for n in counts],
        textposition="outside",
        customdata=[round(100 * n / total, 1) if total else 0.0 for n in counts],
        hovertemplate="Class %{x}: %{y} sections (%{customdata:.1f} %)<extra></extra>",
        showlegend=False,
    )
    _layout(figure, 330, "sections")
    figure.update_layout(
        xaxis={"title": {"text": "GB 3838-2002 class"}},
        yaxis={"range": [0, max([*counts, 1]) * 1.2]},
    )
    return figure


def local_time(instant: datetime, timezone: str) -> str:
    """An instant as the station's wall-clock time, the form Plotly's date axis reads."""
    return instant.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M")


def hourly_series(items: Sequence[AggregateValue], timezone: str) -> go.Figure:
    """Hourly PM2.5 means: valid hours as a line broken at gaps, hours with too few minutes
    of data as grey crosses."""
    line_x: list[str | None] = []
    line_y: list[float | None] = []
    invalid_x: list[str] = []
    invalid_y: list[float | None] = []
    previous: datetime | None = None
    for item in items:
        stamp = local_time(item.period_start, timezone)
        if not item.coverage.valid:
            invalid_x.append(stamp)
            invalid_y.append(item.mean)
            continue
        if previous is not None and item.period_start - previous > timedelta(hours=1):
            line_x.append(None)
            line_y.append(None)
        line_x.append(stamp)
        line_y.append(item.mean)
        previous = item.period_start
    figure = go.Figure()
    figure.add_scatter(
        x=line_x,
        y=line_y,
        mode="lines",
        line={"color": "#2b6cb0", "width": 1.6},
        name="valid hour",
        connectgaps=False,
        hovertemplate="%{x}: %{y:.1f} " + UNIT + "<extra></extra>",
    )
    if invalid_x:
        figure.add_scatter(
            x=invalid_x,
            y=invalid_y,
            mode="markers",
            marker={"color": NOT_ASSESSED, "symbol": "x", "size": 6},
            name="fewer than 45 minutes of data",
            hovertemplate="%{x}: %{y:.1f} " + UNIT + " (not valid)<extra></extra>",
        )
    _layout(figure, 300, f"PM2.5 hourly mean, {UNIT}")
    figure.update_layout(xaxis={"type": "date"}, showlegend=bool(invalid_x))
    return figure


@dataclass(frozen=True)
class DailyPm25:
    """One local day of a station's PM2.5: the daily mean, whether it is valid, the PM2.5
    individual AQI of the day and its HJ 633 category, and the Grade II 24-hour limit."""

    day: date
    mean: float | None
    valid: bool
    iaqi: int | None
    category: AqiCategory | None
    limit_24h: float | None


def pm25_days(items: Sequence[AggregateValue], timezone: str) -> list[DailyPm25]:
    """Daily values of a station with the PM2.5 IAQI (24-hour table of the HJ 633 version in
    force that day) and its category; a day that is not valid gets neither."""
    days = []
    tz = ZoneInfo(timezone)
    for item in items:
        day = item.period_start.astimezone(tz).date()
        version = aqi_version_in_force(day)
        sub_index = None
        category = None
        if item.coverage.valid and item.mean is not None:
            sub_index = iaqi("pm25_24h", item.mean, version).value
            if sub_index is not None:
                category = aqi_category(sub_index, version)
        days.append(
            DailyPm25(
                day=day,
                mean=item.mean,
                valid=item.coverage.valid,
                iaqi=sub_index,
                category=category,
                limit_24h=limit_set_in_force(day).limit("pm25", "24h", 2),
            )
        )
    return days


def daily_series(days: Sequence[DailyPm25], categories: Sequence[AqiCategory]) -> go.Figure:
    """Daily PM2.5 means as bars in the colour of their PM2.5 IAQI category, with the Grade II
    24-hour limit of each day as a step line."""
    figure = go.Figure()
    for category in categories:
        chosen = [d for d in days if d.category == category]
        if not chosen:
            continue
        figure.add_bar(
            x=[d.day.isoformat() for d in chosen],
            y=[d.mean for d in chosen],
            marker_color=hex_colour(category.colour),
            marker_line={"color": "rgba(0,0,0,0.25)", "width": 0.5},
            name=f"{category.name} ({category.name_zh})",
            customdata=[d.iaqi for d in chosen],
            hovertemplate="%{x}: %{y:.1f} "
            + UNIT
            + " · IAQI %{customdata} · "
            + category.name
            + "<extra></extra>",
        )
    invalid = [d for d in days if d.category is None and d.mean is not None]
    if invalid:
        figure.add_bar(
            x=[d.day.isoformat() for d in invalid],
            y=[d.mean for d in invalid],
            marker_color=NOT_ASSESSED,
            opacity=0.6,
            name="fewer than 20 valid hours",
            hovertemplate="%{x}: %{y:.1f} " + UNIT + " (not valid)<extra></extra>",
        )
    with_limit = [d for d in days if d.limit_24h is not None]
    if with_limit:
        figure.add_scatter(
            x=[d.day.isoformat() for d in with_limit],
            y=[d.limit_24h for d in with_limit],
            mode="lines",
            line={"color": LIMIT_LINE, "width": 1.5, "dash": "dash", "shape": "hv"},
            name="Grade II 24-h limit",
            hovertemplate="%{x}: Grade II 24-hour limit %{y:.0f} " + UNIT + "<extra></extra>",
        )
    _layout(figure, 300, f"PM2.5 daily mean, {UNIT}")
    # the page lays out all six categories under the chart; a legend here would repeat it
    figure.update_layout(barmode="overlay", bargap=0.15, xaxis={"type": "date"}, showlegend=False)
    return figure
