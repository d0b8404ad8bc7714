// Validates CSAF 2.0 documents with BSI's @secvisogram/csaf-validator-lib (installed by .ci/run):
// the strict JSON schema (no additional properties), every mandatory test (6.1.x, the library's
// `basic` preset), every optional test (6.2.x) and the informative tests (6.3.x) but three:
// 6.3.6 and 6.3.7 fetch every URL in the document and 6.3.8 runs a spell checker (hunspell),
// which these offline tests do not do. Errors fail a file; optional tests report warnings and
// informative ones infos, printed for the caller to judge.
//
//   node .ci/node/validate-csaf.mjs FILE...
//
// Prints one line per finding (`FILE: <test> <error|warning|info> <path>: <message>`).
// Exit status: 0 when every file passes, 1 when any test reports an error, 2 on bad usage or
// a file that cannot be read or parsed.
import fs from 'node:fs'
import validateStrict from '@secvisogram/csaf-validator-lib/validateStrict.js'
import * as basic from '@secvisogram/csaf-validator-lib/basic.js'
import * as optional from '@secvisogram/csaf-validator-lib/optionalTests.js'
import * as informative from '@secvisogram/csaf-validator-lib/informativeTests.js'

const files = process.argv.slice(2)
if (files.length === 0) {
  console.error('usage: node validate-csaf.mjs FILE...')
  process.exit(2)
}

const offline = Object.entries(informative)
  .filter(([name]) => !['informativeTest_6_3_6', 'informativeTest_6_3_7', 'informativeTest_6_3_8'].includes(name))
  .map(([, test]) => test)
const tests = [...Object.values(basic), ...Object.values(optional), ...offline]
let failed = false
for (const file of files) {
  let document
  try {
    document = JSON.parse(fs.readFileSync(file, 'utf8'))
  } catch (e) {
    console.error(`${file}: ${e.message}`)
    process.exit(2)
  }
  const result = await validateStrict(tests, document)
  for (const test of result.tests) {
    for (const [kind, findings] of [['error', test.errors], ['warning', test.warnings], ['info', test.infos]]) {
      for (const f of findings) {
        console.log(`${file}: ${test.name} ${kind} ${f.instancePath || '/'}: ${f.message}`)
      }
    }
    if (!test.isValid && test.errors.length === 0) {
      console.log(`${file}: ${test.name} error: the test failed without a message`)
    }
  }
  if (!result.isValid) failed = true
  console.log(`${file}: ${result.isValid ? 'valid' : 'INVALID'} (${tests.length} tests: schema csaf_2_0_strict, mandatory, optional and informative)`)
}
process.exit(failed ? 1 : 0)
