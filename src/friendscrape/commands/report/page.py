"""The whole report page: headline, tables and charts in one self-contained HTML file.

No script, no font, no image file and no URL: the page opens anywhere and can be mailed.
Its CSS lays the charts out in columns on a wide screen and in one column on a phone;
the wide tables scroll inside their own box rather than widening the page.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime

from friendscrape.commands.report.charts import (
    friends_chart,
    interval_words,
    pauses_charts,
    progress_chart,
    throughput_chart,
)
from friendscrape.commands.report.figures import Figures
from friendscrape.commands.report.tables import (
    cost_note,
    failures_table,
    fleet_table,
    headline,
    job_facts,
    lists_table,
    partition_table,
    status_table,
)

CSS = """
*{box-sizing:border-box}
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#222;
  margin:0 auto;padding:1rem 1.5rem 3rem;max-width:1240px}
h1{font-size:1.4rem;margin:.2rem 0}
h2{font-size:1.1rem;margin:1.6rem 0 .4rem;border-bottom:1px solid #ccc;padding-bottom:.2rem}
.headline{font-size:1.3rem;font-weight:600;margin:.4rem 0 .2rem}
.meta,.note{color:#555;font-size:.85rem;margin:.3rem 0}
.banner{background:#fff3cd;border:2px solid #b8860b;color:#3d2c00;padding:.5rem .8rem;
  margin:.5rem 0;font-size:1rem}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.1rem 1rem;margin:.4rem 0;
  font-size:.9rem}
dl.facts dt{color:#555}
dl.facts dd{margin:0;overflow-wrap:anywhere}
.grid{display:grid;gap:1rem 2rem;
  grid-template-columns:repeat(auto-fill,minmax(min(100%,440px),1fr))}
figure{margin:0;min-width:0}
figcaption{font-weight:600;margin:.6rem 0 .2rem}
svg.chart{display:block;width:100%;height:auto;max-width:100%}
ul.legend{list-style:none;margin:.2rem 0;padding:0;display:flex;flex-wrap:wrap;
  gap:.2rem 1rem;font-size:.85rem}
ul.legend li{display:flex;align-items:center;gap:.35rem;white-space:nowrap}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;font-variant-numeric:tabular-nums;margin:.3rem 0}
caption{text-align:left;font-weight:600;padding:.2rem 0;white-space:nowrap}
th,td{padding:.2rem .6rem;border-bottom:1px solid #e2e2e2;text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left}
#lists td:last-child,#lists th:last-child{text-align:left;white-space:normal;color:#555}
thead th{border-bottom:2px solid #999}
tr.total td{font-weight:600;border-top:2px solid #999}
.empty{color:#555;font-style:italic}
code{font-size:.9em}
@media (max-width:640px){
  body{font-size:13px;padding:.6rem .6rem 2rem}
  h1{font-size:1.2em}
  .headline{font-size:1.1em}
  .meta,.note{font-size:.95em}
  .banner{font-size:1.05em;padding:.4rem .6rem}
  dl.facts{grid-template-columns:minmax(0,8.5em) minmax(0,1fr);gap:0 .6rem;font-size:1em}
  table{font-size:12px}
  th{white-space:normal}
  th,td{padding:.15rem .25rem}
  .wide{display:none}
}
"""


def render_page(figures: Figures, *, title: str, generated_at: datetime) -> str:
    """The whole page, as text."""
    when = generated_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    bars = interval_words(figures.bar_interval)
    sections = [
        f"<h1>{html.escape(title)}</h1>",
        headline(figures),
        job_facts(figures),
        f'<p class="meta">Generated {when} from the store; every figure is counted there.</p>',
        cost_note(figures.cost),
        "<h2>Partitions</h2>",
        partition_table(figures),
        fleet_table(figures),
        "<h2>Progress</h2>",
        f'<div class="grid">{progress_chart(figures)}{throughput_chart(figures)}</div>',
        "<h2>Statuses, lists and failures</h2>",
        (
            f'<div class="grid"><div>{status_table(figures)}</div>'
            f"<div>{lists_table(figures)}</div><div>{failures_table(figures)}</div></div>"
        ),
        "<h2>Friends</h2>",
        f'<div class="grid">{friends_chart(figures)}</div>',
        "<h2>Rate limits</h2>",
        (
            f'<p class="note">From the samples each run records (table run_samples, per '
            f"{bars}, summed over workers): HTTP 429 answers, and seconds a host was "
            "paused after a 429 or a spent quota, summed over hosts.</p>"
        ),
        f'<div class="grid">{pauses_charts(figures)}</div>',
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>"
        + "".join(sections)
        + "</body></html>\n"
    )
