// Swagger 2.0 -> OpenAPI 3.0 with the pinned swagger2openapi. Offline: no external $ref resolution.
// Reads one JSON document on stdin, writes the converted JSON document on stdout.
// Called by codegen/convert.py; the generated header of every output names this step.
'use strict';
const converter = require('swagger2openapi');

let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => { input += chunk; });
process.stdin.on('end', async () => {
  try {
    const swagger = JSON.parse(input);
    const options = { patch: true, warnOnly: true, resolve: false, resolveInternal: false, direct: false };
    const result = await converter.convertObj(swagger, options);
    process.stdout.write(JSON.stringify({ openapi: result.openapi, patches: result.patches || 0 }));
  } catch (err) {
    process.stderr.write(String((err && err.message) || err) + '\n');
    process.exit(1);
  }
});
