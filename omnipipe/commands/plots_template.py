"""``omnipipe plots-template --out F``: an HTML template that makes ``dvc plots show/diff`` work offline.

DVC's default page loads vega, vega-lite and vega-embed from a CDN, so its charts stay empty without
internet. This template inlines the three libraries instead, bundled at run time by the installed
``vl-convert-python`` package (nothing third-party is stored in this repository). The repository's
``.dvc/config`` points ``plots.html_template`` at the file; ``dvc repro`` writes it (stage
``plots_template``).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from omnipipe.atomic import atomic_write
from omnipipe.errors import OmnipipeError

PAGE = """<!DOCTYPE html>
<html>
<head>
    <meta charset="utf-8">
    {refresh_tag}
    <title>omnipipe plots</title>
    <!-- vega, vega-lite and vega-embed: bundled by vl-convert-python VERSION, inlined for offline use -->
    <script type="text/javascript">
BUNDLE
    </script>
    <style>
        body { font-family: sans-serif; }
        table { border-spacing: 15px; }
    </style>
</head>
<body>
    {plot_divs}
</body>
</html>
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("plots-template", help="write the offline HTML template for `dvc plots show`")
    parser.add_argument("--out", required=True, type=Path, help="where to write it (see .dvc/config: plots.html_template)")
    parser.set_defaults(handler=run)


def offline_page() -> str:
    """The template: DVC fills ``{plot_divs}`` (and ``{refresh_tag}``); the libraries are inlined."""
    try:
        import vl_convert
    except ImportError:
        raise OmnipipeError("plots-template: the vl-convert-python package is missing (pip install vl-convert-python)") from None
    bundle = vl_convert.javascript_bundle().replace("</script", "<\\/script")  # sets window.vegaEmbed, vega, vegaLite
    return PAGE.replace("VERSION", getattr(vl_convert, "__version__", "?")).replace("BUNDLE", bundle)


def run(args: argparse.Namespace) -> int:
    page = offline_page()
    atomic_write(args.out, lambda file: file.write(page.encode("utf-8")))
    print(f"{args.out}: offline template for dvc plots ({len(page) // 1024} KiB)")
    return 0
