// Ledger benchmark (run by hand through tools/bench/ledger; not a test).
//   ledger-bench DIR [DECISIONS] [LEAVES]     defaults 100,000 and 1,000,000
import DatanetCrypto
import DatanetLedger
import DatanetObjects
import DatanetRecords
import DatanetStore
import Foundation

func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }
func time<R>(_ body: () throws -> R) rethrows -> (R, Double) {
    let t = ContinuousClock.now
    let r = try body()
    return (r, seconds(ContinuousClock.now - t))
}
/// Copies a store with cp(1): FileManager's copy takes minutes for a few GB.
func copyTree(_ from: String, _ to: String) throws {
    let cp = try Process.run(URL(fileURLWithPath: "/bin/cp"), arguments: ["-a", from, to])
    cp.waitUntilExit()
    guard cp.terminationStatus == 0 else { throw CocoaError(.fileWriteUnknown) }
}
func percentile(_ xs: [Double], _ p: Double) -> Double { let s = xs.sorted(); return s[min(s.count - 1, Int(Double(s.count) * p))] }

let args = CommandLine.arguments
let dir = args[1]
let n = args.count > 2 ? Int(args[2])! : 100_000
let leavesN = args.count > 3 ? Int(args[3])! : 1_000_000
// LEDGER_BENCH_SNAPSHOT=PATH (for profiling the decision phase alone): the first run saves the
// store with the reviews queued, and the sequencer key, at PATH; later runs copy it back and
// time only the decisions.
let snapshot = ProcessInfo.processInfo.environment["LEDGER_BENCH_SNAPSHOT"]
try? FileManager.default.removeItem(atPath: dir)
if let snapshot, FileManager.default.fileExists(atPath: snapshot + "/sequencer.seed") {
    try copyTree(snapshot + "/store", dir)
    sync() // the copy's dirty pages would otherwise be flushed by the first timed commit
    let owner = try SigningKey(seed: Array(try Data(contentsOf: URL(fileURLWithPath: snapshot + "/sequencer.seed"))))
    let d = DatanetID(hex: try String(contentsOfFile: snapshot + "/datanet", encoding: .utf8))!
    let ledger = try Ledger(store: try ObjectStore(directory: dir, create: false))
    let (decided, decideT) = try time { try ledger.sequence(d, key: owner) }
    print(String(format: "sequence %d decisions (every index written, from snapshot): %.2f s = %.0f/s", decided.decisions.count, decideT, Double(decided.decisions.count) / decideT))
    try? FileManager.default.removeItem(atPath: dir)
    exit(0)
}
let ledger = try Ledger(store: try ObjectStore(directory: dir, create: true))
let owner = try SigningKey(), curator = try SigningKey(), author = try SigningKey()
let policy = PolicyState(name: "bench", owner: owner.publicKey, sequencer: owner.publicKey, curators: [curator.publicKey], quorum: 1,
                         contributors: nil, readers: nil, maxPendingProposals: .max, maxPendingBytes: .max)
var g = Envelope(kind: .genesis, body: Genesis(policy: policy, createdAt: 0, nonce: [UInt8](repeating: 1, count: 16)).body)
try g.sign(with: owner)
let d = try ledger.create(genesis: g, sequencerKey: owner)

// 0. The content, ingested before anything is timed: n distinct texts of about 1 KiB (170
//    words from a 50,000-word vocabulary), so queueing does the real near-duplicate check
//    (MinHash and its band index) on content in the store.
let contentDir = dir + "-content"
try? FileManager.default.removeItem(atPath: contentDir)
try FileManager.default.createDirectory(atPath: contentDir, withIntermediateDirectories: true)
var wordState: UInt64 = 0x9E37_79B9_7F4A_7C15
var sampleTexts = [String]() // the first 10,000, for timing MinHash alone
for i in 0..<n {
    var words = [String]()
    for _ in 0..<170 {
        wordState ^= wordState << 13; wordState ^= wordState >> 7; wordState ^= wordState << 17
        words.append("w\(wordState % 50_000)")
    }
    let text = words.joined(separator: " ")
    if i < 10_000 { sampleTexts.append(text) }
    guard FileManager.default.createFile(atPath: contentDir + "/" + String(format: "%08d.txt", i), contents: Data(text.utf8)) else {
        throw CocoaError(.fileWriteUnknown)
    }
}
let (added, ingestT) = try time { try Ingest(store: ledger.store).add(paths: [contentDir]) }
let blobs = try ledger.store.tree(added[0].id)!.entries
try? FileManager.default.removeItem(atPath: contentDir)
sync() // the setup's writeback would otherwise compete with the timed phases for both cores
print(String(format: "(setup) ingest %d text files of about 1 KiB: %.2f s", n, ingestT))

// 1. Sign n contribution records naming that content.
let mediaType = ProcessInfo.processInfo.environment["LEDGER_BENCH_MEDIA"] ?? "text/plain"
let (contributions, signT) = try time { () -> [Envelope] in
    try (0..<n).map { i in
        var e = Envelope(kind: .contribution, body: Contribution(
            datanet: d, author: author.publicKey, content: blobs[i].id, contentKind: .blob, size: blobs[i].size,
            mediaType: mediaType, license: "CC0-1.0", sidecar: .zero, createdAt: UInt64(i)).body)
        try e.sign(with: author)
        return e
    }
}
print(String(format: "sign %d contribution records: %.2f s = %.0f/s", n, signT, Double(n) / signT))
// 2. Verify n signatures, as records (context, body, every signer) and, alternated with it in
//    three rounds, as raw libsodium calls on the same messages prepared beforehand: the ratio of
//    the medians is record verification against libsodium's raw rate in the same run.
let prepared = contributions.map { ($0.signatures[0].key, $0.signatures[0].signature, $0.signedMessage) }
var recordRates = [Double](), rawRates = [Double]()
for _ in 0..<3 {
    let (_, verifyT) = try time { for e in contributions { _ = try e.verifiedSigners() } }
    recordRates.append(Double(n) / verifyT)
    let (ok, rawT) = time { prepared.allSatisfy { $0.0.isValidSignature($0.1, for: $0.2) } }
    guard ok else { print("a signature did not verify"); exit(1) }
    rawRates.append(Double(n) / rawT)
}
print(String(format: "verify %d signatures: median %.0f/s (rounds %@); raw libsodium on the same messages: median %.0f/s (rounds %@) = %.1f%%",
             n, percentile(recordRates, 0.5), recordRates.map { String(format: "%.0f", $0) }.joined(separator: ", "),
             percentile(rawRates, 0.5), rawRates.map { String(format: "%.0f", $0) }.joined(separator: ", "),
             100 * percentile(recordRates, 0.5) / percentile(rawRates, 0.5)))
// 2b. The near-duplicate sketch alone: MinHash signatures of those texts on one core.
let (_, minhashT) = time { for t in sampleTexts { _ = MinHash.signature(t) } }
print(String(format: "MinHash signatures of %d texts (one core): %.2f s = %.0f/s", sampleTexts.count, minhashT, Double(sampleTexts.count) / minhashT))
// 3. Queue them (signature checks again, near-duplicate check, indexes, pending), 10,000 per transaction.
let (_, queueT) = try time { for batch in stride(from: 0, to: n, by: 10_000) { try ledger.propose(all: Array(contributions[batch..<min(n, batch + 10_000)])) } }
print(String(format: "queue %d proposals: %.2f s = %.0f/s", n, queueT, Double(n) / queueT))
// 4. Intake: n intake leaves with promises, one checkpoint.
let (intake, intakeT) = try time { try ledger.sequence(d, key: owner) }
print(String(format: "sequence %d intakes (with signed promises): %.2f s = %.0f/s", intake.intakes.count, intakeT, Double(intake.intakes.count) / intakeT))
// 5. One review per contribution (a decision leaf copies the reviews that decided it, so
//    reviews covering many contributions would make every such leaf large), then n decisions.
let reviews = try contributions.map { c -> Envelope in
    var e = Envelope(kind: .review, body: Review(datanet: d, reviewer: curator.publicKey, contributions: [c.id], accept: true, reason: "").body)
    try e.sign(with: curator)
    return e
}
for batch in stride(from: 0, to: n, by: 10_000) { try ledger.propose(all: Array(reviews[batch..<min(n, batch + 10_000)])) }
if let snapshot {
    try FileManager.default.createDirectory(atPath: snapshot, withIntermediateDirectories: true)
    try copyTree(dir, snapshot + "/store")
    try d.hex.write(toFile: snapshot + "/datanet", atomically: true, encoding: .utf8)
    try Data(owner.seed).write(to: URL(fileURLWithPath: snapshot + "/sequencer.seed"))
    print("snapshot saved at \(snapshot)")
}
let (decided, decideT) = try time { try ledger.sequence(d, key: owner) }
print(String(format: "sequence %d decisions (every index written): %.2f s = %.0f/s", decided.decisions.count, decideT, Double(decided.decisions.count) / decideT))

// 6. Raw leaf appends into a Merkle log, one transaction.
let rawDir = dir + "-raw"
try? FileManager.default.removeItem(atPath: rawDir)
let raw = try ObjectStore(directory: rawDir, create: true)
let log = try MerkleLog(env: raw.env, id: DatanetID(SHA256.hash([1])), create: true)
let hashes = (0..<leavesN).map { Merkle.leafHash(Array("leaf \($0)".utf8)) }
let (_, appendT) = try time { try raw.env.write { txn in try log.append(txn, leafHashes: hashes) } }
print(String(format: "raw leaf appends: %d in %.2f s = %.0f/s (durable commit included)", leavesN, appendT, Double(leavesN) / appendT))
// 7. Checkpoint at that size: root + signature (before any commit).
var cpTimes = [Double]()
for _ in 0..<200 {
    let (_, t) = try time { try raw.env.read { txn in
        let root = try log.root(txn, size: UInt64(leavesN))
        _ = try Checkpoint(origin: "datanet/bench", size: UInt64(leavesN), root: root).signed(by: owner)
    } }
    cpTimes.append(t)
}
print(String(format: "checkpoint at %d leaves (root + signature): median %.1f µs, p99 %.1f µs", leavesN, percentile(cpTimes, 0.5) * 1e6, percentile(cpTimes, 0.99) * 1e6))
// 8. Proofs at that size.
var rng = SystemRandomNumberGenerator()
let size = UInt64(leavesN)
let root = try raw.env.read { txn in try log.root(txn, size: size) }
var genI = [Double](), verI = [Double](), genC = [Double](), verC = [Double]()
try raw.env.read { txn in
    for _ in 0..<2000 {
        let i = UInt64.random(in: 0..<size, using: &rng)
        let (p, g1) = try time { try log.inclusionProof(txn, index: i, size: size) }
        let (_, v1) = try time { try Merkle.verifyInclusion(index: i, size: size, leafHash: hashes[Int(i)], proof: p, root: root) }
        genI.append(g1); verI.append(v1)
        let m = UInt64.random(in: 1..<size, using: &rng)
        let (cp, g2) = try time { try log.consistencyProof(txn, size1: m, size2: size) }
        let r1 = try log.root(txn, size: m)
        let (_, v2) = try time { try Merkle.verifyConsistency(size1: m, size2: size, root1: r1, root2: root, proof: cp) }
        genC.append(g2); verC.append(v2)
    }
}
for (name, xs) in [("inclusion proof generate", genI), ("inclusion proof verify", verI), ("consistency proof generate", genC), ("consistency proof verify", verC)] {
    print(String(format: "%@ at %d leaves: median %.1f µs, p99 %.1f µs", name, leavesN, percentile(xs, 0.5) * 1e6, percentile(xs, 0.99) * 1e6))
}
try? FileManager.default.removeItem(atPath: rawDir)
try? FileManager.default.removeItem(atPath: dir)
