// Parse AsyncAPI documents with the official parser (@asyncapi/parser, found through NODE_PATH) and print,
// as one JSON object keyed by path, whether each parsed and its error and warning diagnostics. One node
// process for all of them: starting the parser takes seconds.
const { Parser, fromFile } = require('@asyncapi/parser');

const brief = (d) => ({ code: d.code, message: d.message, path: d.path });

(async () => {
  const parser = new Parser();
  const results = {};
  for (const path of process.argv.slice(2)) {
    const { document, diagnostics } = await fromFile(parser, path).parse();
    results[path] = { parsed: document !== undefined,
                      errors: diagnostics.filter((d) => d.severity === 0).map(brief),
                      warnings: diagnostics.filter((d) => d.severity === 1).map(brief) };
  }
  console.log(JSON.stringify(results));
})();
