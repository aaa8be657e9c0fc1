// The console embeds console/static/chart.js and uplot.css in the binary;
// this checks they are what src/chart.js and the pinned uPlot build to,
// so the committed bundle can never drift from its source.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { build } from "esbuild";

const web = join(import.meta.dirname, "..");
const pkg = JSON.parse(readFileSync(join(web, "package.json"), "utf8"));

test("console/static/chart.js is this build of src/chart.js", async () => {
  // The same options as "npm run bundle", read from package.json so the
  // two cannot disagree.
  const args = pkg.scripts.bundle.split("&&")[0].trim().split(/\s+/).slice(1);
  const opts = { entryPoints: [join(web, args[0])], write: false, absWorkingDir: web };
  for (const a of args.slice(1)) {
    const [k, v] = a.replace(/^--/, "").split("=");
    if (k === "bundle") opts.bundle = true;
    else if (k === "minify") opts.minify = true;
    else if (k === "format") opts.format = v;
    else if (k === "target") opts.target = v;
    else if (k === "legal-comments") opts.legalComments = v;
    else if (k === "outfile") opts.outfile = join(web, v);
    else throw new Error(`bundle script flag ${a} not understood by this test`);
  }
  const out = await build(opts);
  const built = out.outputFiles[0].text;
  const shipped = readFileSync(join(web, "../static/chart.js"), "utf8");
  assert.equal(shipped, built, "console/static/chart.js is stale: run npm run bundle in console/web and commit it");
});

test("console/static/uplot.css is the pinned uPlot's", () => {
  const want = readFileSync(join(web, "node_modules/uplot/dist/uPlot.min.css"), "utf8");
  assert.equal(readFileSync(join(web, "../static/uplot.css"), "utf8"), want, "run npm run bundle in console/web and commit it");
});

test("dependencies are pinned to exact versions", () => {
  for (const [name, version] of Object.entries(pkg.devDependencies)) {
    assert.match(version, /^\d+\.\d+\.\d+$/, `${name}@${version} is not pinned`);
  }
});
