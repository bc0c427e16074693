// Cucumber profiles. `qbc run` loads one of these and then sets worldParameters and the
// report files itself; plain `npx cucumber-js -p <profile>` works too (after `npm run build`).
//   default: the reference implementation, cross-checked by real qemu
//   qemu:    real qemu-img/qemu-io, cross-checked by the reference
//   cli:     qemu's command-line dialect spoken by bin/qbc-img and bin/qbc-io, checked by qemu
//   ci:      the default pairing with two workers and a quiet console
// World parameters: { impl: adapter spec for loadAdapter, oracle: 'qemu' | 'reference' | 'none' }.

const common = {
  paths: ['features/**/*.feature'],
  import: ['dist/step_definitions/**/*.js'],
  formatOptions: { snippetInterface: 'async-await' },
};

function profile(impl, oracle, { stdout = 'progress', ...extra } = {}) {
  return {
    ...common,
    format: [
      stdout,
      `html:reports/${impl}/cucumber.html`,
      `junit:reports/${impl}/junit.xml`,
      `message:reports/${impl}/messages.ndjson`,
    ],
    worldParameters: { impl, oracle },
    ...extra,
  };
}

module.exports = {
  default: profile('reference', 'qemu'),
  qemu: profile('qemu', 'reference'),
  cli: profile('cli', 'qemu'),
  // CI logs want failures, not a line of dots; two workers fit a 2-core runner.
  ci: profile('reference', 'qemu', { stdout: 'summary', parallel: 2 }),
};
