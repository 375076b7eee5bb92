// Receipt and manifest fuzzer (tools/test runs 10^5 of each in CI; run by hand for longer):
// seeded mutations of the golden receipt, of a fresh receipt checked against the store that made
// it, and of an exported dataset's MANIFEST.jsonl and CHECKPOINT, checked with and without the
// log. Any crash is a finding; a mutated input that verifies while saying something else than
// the original exits 1 and prints it.
//   provenance-fuzz [RECEIPTS] [MANIFESTS] [SEED]      (defaults: 1,000,000 each, seed 1)
import DatanetCrypto
import DatanetLedger
import DatanetObjects
import DatanetRecords
import DatanetTestSupport
import Foundation

let args = CommandLine.arguments
let receipts = args.count > 1 ? Int(args[1]) ?? 1_000_000 : 1_000_000
// PROVENANCE_FUZZ_ONE=SEED,COUNT runs one golden-receipt slice alone (to replay a finding).
let manifests = args.count > 2 ? Int(args[2]) ?? 1_000_000 : 1_000_000
let seed = args.count > 3 ? UInt64(args[3]) ?? 1 : 1
let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent()

let start = Date()
let fixture = try ProvenanceFixture()
let golden = try Receipt(json: Data(contentsOf: root.appendingPathComponent("schema/vectors/receipts/good.json")))
let receiptFuzzers = [try ReceiptFuzzer(good: golden, anchor: DatanetID(hex: golden.datanet)!),
                      try ReceiptFuzzer(good: fixture.receipt, anchor: fixture.datanet, held: fixture.held)]
let manifestFuzzers = [try ManifestFuzzer(dir: fixture.export, ledger: fixture.ledger), try ManifestFuzzer(dir: fixture.export, ledger: nil)]

/// Splits `total` mutations over 8 slices (alternating the fuzzers), run on every core.
func run(_ total: Int, _ body: @escaping @Sendable (Int, UInt64, Int) -> FuzzOutcome) throws -> FuzzOutcome {
    let slices = 8
    return try Parallel.map(Array(0..<slices), grain: 1) { i in
        body(i, seed &* 1000 &+ UInt64(i), total / slices + (i < total % slices ? 1 : 0))
    }.reduce(FuzzOutcome(), +)
}

let r = try run(receipts) { i, s, n in receiptFuzzers[i % 2].run(seed: s, count: n) }
let m = try run(manifests) { i, s, n in manifestFuzzers[i % 2].run(seed: s, count: n) }
for f in (r.failures + m.failures).prefix(5) { print("HELD WHILE CHANGED: \(f)") }
print("provenance-fuzz: receipts \(receipts) (\(r.refused) refused, \(r.held) held unchanged), "
      + "manifests \(manifests) (\(m.refused) refused, \(m.held) held unchanged), no crash, "
      + String(format: "%.1f s", Date().timeIntervalSince(start)))
exit(r.failures.isEmpty && m.failures.isEmpty ? 0 : 1)
