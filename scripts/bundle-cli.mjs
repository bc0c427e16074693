// Bundles the command-line entry points (qbc img / io / nbd) into one file each, beside
// their modules in dist/reference/cli/. bin/qbc-img, qbc-io and qbc-nbd start from the
// bundle when it is there: a qemu-img-style tool is started once per operation, and
// resolving and loading some 150 separate modules cost each start about 200 ms of CPU.
// The bundle sits in the same directory as the module it replaces, so every path that
// code derives from import.meta.url (schemas/, build/Release/, bin/) stays the same.
// Packages that load files of their own at run time (wasm, native bindings) stay external.
import { build } from 'esbuild';

const entries = ['img', 'io', 'nbd'];
await build({
  entryPoints: Object.fromEntries(entries.map((e) => [`${e}.bundle`, `dist/reference/cli/${e}.js`])),
  outdir: 'dist/reference/cli',
  outExtension: { '.js': '.mjs' },
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: ['@bokuweb/zstd-wasm', 'ssh2', 'cpu-features'],
  // CommonJS packages inside an ES module bundle need a require of their own
  banner: { js: "import { createRequire as qbcCreateRequire } from 'node:module'; const require = qbcCreateRequire(import.meta.url);" },
  logLevel: 'warning',
});
