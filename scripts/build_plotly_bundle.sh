#!/usr/bin/env bash
# Rebuild dmaprof/render/assets/plotly-dmaprof.min.js: a partial plotly.js bundle holding only
# the trace types the HTML reports draw (treemap, sankey, scatter). The full plotly.min.js is
# 4.8 MB and takes Chromium about 2 s to parse and run on a 2-core machine; this one is 1.4 MB
# and about 0.3 s (scripts/bench_html.py). Needs node and npm (the npm registry); the reports
# themselves need neither. Run from the repository root:  bash scripts/build_plotly_bundle.sh
set -euo pipefail
PLOTLY_VERSION=4.1.1 # the plotly.js that Plotly's Python package 6.x/7.x ships
ESBUILD_VERSION=0.28.2
out="$(pwd)/dmaprof/render/assets/plotly-dmaprof.min.js"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
echo '{"name": "dmaprof-plotly-bundle", "private": true}' >package.json
npm install --no-audit --no-fund --ignore-scripts --silent \
    "plotly.js@$PLOTLY_VERSION" "esbuild@$ESBUILD_VERSION"
cat >entry.js <<'JS'
var Plotly = require("plotly.js/lib/core");
Plotly.register([
    require("plotly.js/lib/treemap"),
    require("plotly.js/lib/sankey"),
    require("plotly.js/lib/scatter"),
]);
module.exports = Plotly;
JS
# plotly.js's MIT licence text on top; the bundled libraries' notices at the end
banner="/*! plotly.js v$PLOTLY_VERSION (treemap, sankey, scatter only), built for dmaprof by"
banner+=" scripts/build_plotly_bundle.sh from the npm package.
$(sed 's#\*/#* /#g' node_modules/plotly.js/LICENSE)
*/"
# the CSS esbuild also writes (maplibre's, for map traces) is not used
npx esbuild entry.js --bundle --minify --format=iife --global-name=Plotly --target=es2016 \
    --define:global=window --define:define.amd=false --legal-comments=eof \
    "--banner:js=$banner" --log-level=warning --outfile=bundle.js
if grep -qi '</script' bundle.js; then
    echo "build_plotly_bundle: the bundle contains '</script': it cannot be inlined" >&2
    exit 1
fi
cp bundle.js "$out"
echo "wrote $out ($(wc -c <"$out") bytes)"
