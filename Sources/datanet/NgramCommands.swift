import DatanetAttribution
import DatanetCrypto
import DatanetLedger
import DatanetObjects
import DatanetRecords
import DatanetStore
import DatanetSync
import Foundation
import Glibc

/// `datanet model train D[@SIZE] --kind ngram`: an ∞-gram model (schema/spans.md "∞-gram
/// model") whose artifact is the span index shards of the checkpoint's training set plus its
/// configuration, registered by a signed `model` record.
func runNgramTrain(_ p: Parsed) throws -> Int32 {
    for o in ["--licenses", "--features", "--k", "--scale"] where p.options[o] != nil {
        throw CLIError.usage("an ngram model reads the whole training set's documents: \(o) does not apply")
    }
    let (ledger, st, size, me) = try trainingTarget(p)
    // Under the lock throughout: shards holding withdrawn text are rebuilt first (the artifact
    // copies the shards' bytes), and gc leaves the artifact being written alone.
    return try withSpanLock {
    var indexes = SpanIndexes(ledger, st, quiet: p.has("--json"))
    try indexes.dropWithdrawn()
    let (index, checkpoint) = try indexes.index(at: size)
    guard index.documentCount > 0 else {
        throw CLIError.failure("the training set of \(st.policy.name) at \(checkpoint) has no documents (.txt, .md, .jsonl text; `datanet dataset` shows what it holds)")
    }
    let bound = try checkpointBinding(ledger, st.id, at: checkpoint)
    let accepted = try ledger.reader.accepted(st.id, at: checkpoint).items
    let included = Set(index.shards.flatMap { $0.contributions.filter { $0.state == .indexed }.map(\.id) }).subtracting(index.excluded)
    var bytes: UInt64 = 0
    for s in index.shards {
        for k in 0..<s.documentCount where !index.excluded.contains(s.contributions[s.contribution(ofDocument: k)].id) { bytes += UInt64(s.end(k) - s.start(k)) }
    }
    let name = p.options["--name"] ?? "\(st.policy.name.prefix(200))-\(checkpoint)-ngram"
    var record = ModelRecord(datanet: st.id, builder: me.publicKey, name: name, checkpointSize: checkpoint, checkpointRoot: bound.root,
                             trainer: InfiniGramArtifact.trainerName, trainerVersion: "\(InfiniGramArtifact.version)",
                             configuration: [("kind", "ngram"), ("level", "byte")], artifact: ObjectID(Digest.zero), artifactSize: 0,
                             training: .init(contributions: UInt64(included.count), examples: UInt64(index.documentCount), bytes: bytes,
                                             licenses: Array(Set(accepted.filter { included.contains($0.id) }.map(\.contribution.license))),
                                             tombstonesBefore: st.size),
                             createdAt: nowMillis())
    try checkRegistrable(record)
    let tmp = SpanManifest.directory + "/cache/ngram-\(getpid())-\(UInt32.random(in: 0 ... .max))"
    let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
    guard fd >= 0 else { throw CLIError.failure("cannot create \(tmp)") }
    defer { unlink(tmp) }
    do {
        defer { close(fd) }
        try InfiniGramArtifact.write(datanet: st.id, checkpointSize: checkpoint, checkpointRoot: bound.root, excluded: Array(index.excluded),
                                     shards: index.shards) { try writeRaw(fd, $0, path: tmp) }
    }
    let added = try Ingest(store: ledger.store).add(paths: [tmp])[0]
    (record.artifact, record.artifactSize) = (added.id, added.size)
    let e = try ledger.registerModel(record, by: me.signingKey)
    if p.has("--json") {
        try printJSON(["model": e.id.hex, "name": name, "status": "pending", "artifact": added.id.hex, "bytes": added.size, "new_bytes": added.newBytes,
                       "datanet": st.id.hex, "checkpoint": checkpoint, "kind": "ngram", "documents": index.documentCount,
                       "contributions": included.count, "shards": index.shards.count] as [String: Any])
    } else {
        out("trained ngram on \(terminalSafe(st.policy.name)) at checkpoint \(checkpoint): \(index.documentCount) document(s) from \(included.count) contribution(s), \(humanBytes(bytes)) of text in \(index.shards.count) shard(s)")
        out("artifact \(added.id.hex) (\(humanBytes(added.size)), \(humanBytes(added.newBytes)) new in this store)")
        out("model \(e.id.hex) '\(terminalSafe(name))' pending (run `datanet sequence \(terminalSafe(st.policy.name))` as its sequencer to register it)")
    }
    return 0
    }
}

/// The shards of an ∞-gram artifact, from cache files `spans/cache/<artifact>-<k>.shard` or
/// extracted from the blob (every chunk re-hashed; each shard checked in full).
func ngramShards(_ ledger: Ledger, _ artifact: ObjectID) throws -> (InfiniGramArtifact, [SpanShard]) {
    try withSpanLock {
        let base = SpanManifest.directory + "/cache/" + artifact.hex
        if let head = FileManager.default.contents(atPath: base + ".header"), let size = try ledger.store.blob(artifact)?.size,
           let a = try? head.withUnsafeBytes({ try InfiniGramArtifact(prefix: $0, length: size) }),
           let shards = try? a.shards.indices.map({ try SpanShard(mapping: base + "-\($0).shard") }) {
            return (a, shards)
        }
        let tmp = base + ".tmp-\(getpid())"
        let fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw CLIError.failure("cannot create \(tmp)") }
        defer { close(fd); unlink(tmp) }
        try ledger.store.writeBlob(artifact, to: fd)
        let size = Int(lseek(fd, 0, SEEK_END))
        guard size >= 16, let m = mmap(nil, size, PROT_READ, MAP_SHARED, fd, 0), m != MAP_FAILED else { throw CLIError.failure("artifact \(artifact.hex) is not an ∞-gram artifact") }
        defer { munmap(m, size) }
        let all = UnsafeRawBufferPointer(start: m, count: size)
        let a: InfiniGramArtifact
        do { a = try InfiniGramArtifact(prefix: all, length: UInt64(size)) } catch { throw CLIError.failure("artifact \(artifact.hex): \(error)") }
        var shards = [SpanShard]()
        var placed = [String]()
        // A failure leaves no part of this artifact in the cache.
        var done = false
        defer { if !done { for f in placed { unlink(f) } } }
        for (k, s) in a.shards.enumerated() {
            let path = base + "-\(k).shard"
            let part = path + ".tmp-\(getpid())"
            let out = open(part, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
            guard out >= 0 else { throw CLIError.failure("cannot create \(part)") }
            do { defer { close(out) }; try writeRaw(out, UnsafeRawBufferPointer(rebasing: all[Int(s.offset)..<Int(s.offset + s.length)]), path: part) }
            do {
                let shard = try SpanShard(mapping: part)
                try shard.checkEntries()
                guard shard.binding.datanet == a.datanet, shard.binding.from == s.from, shard.binding.to == s.to else {
                    throw SpanError.malformed("shard \(k) is bound to another Datanet or range than the artifact says")
                }
                guard rename(part, path) == 0 else { throw CLIError.failure("cannot move \(part)") }
                placed.append(path)
                shards.append(shard)
            } catch {
                unlink(part)
                throw CLIError.failure("artifact \(artifact.hex): \(error)")
            }
        }
        let headerBytes = Array(all.prefix(16 + Int(UInt64(littleEndian: all.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))))
        guard FileManager.default.createFile(atPath: base + ".header", contents: Data(headerBytes)) else { throw CLIError.failure("cannot write \(base).header") }
        done = true
        return (a, shards)
    }
}

/// `datanet generate MODEL --prompt TEXT [--max-bytes N] [--seed S]`: ∞-gram generation, each
/// byte with the suffix it continued and the contributions holding that continuation.
func runGenerate(_ p: Parsed) throws -> Int32 {
    guard let prompt = p.options["--prompt"] else { throw CLIError.usage("give the prompt with --prompt TEXT") }
    let maxBytes = try p.options["--max-bytes"].map { t -> Int in
        guard let n = Int(t), n >= 1, n <= 1_000_000 else { throw CLIError.usage("--max-bytes takes 1 to 1000000, not '\(terminalSafe(t))'") }
        return n
    } ?? 200
    let seed = try p.options["--seed"].map { t -> UInt64 in
        guard let n = UInt64(t) else { throw CLIError.usage("--seed takes an unsigned 64-bit integer, not '\(terminalSafe(t))'") }
        return n
    } ?? 0
    var ledger = try openLedger()
    guard let m = try findModel(ledger, p.positionals[0]) else { throw CLIError.failure("no model '\(terminalSafe(p.positionals[0]))' here (`datanet model ls` lists them)") }
    guard m.record.trainer == InfiniGramArtifact.trainerName else {
        throw CLIError.failure("model '\(terminalSafe(p.positionals[0]))' was made by \(terminalSafe(m.record.trainer)), not the ∞-gram trainer `generate` runs")
    }
    if try !ledger.reader.holdsObject(m.record.artifact, kind: .blob) {
        ledger = try openLedger()
        _ = try fetchMissing(ledger, m.record.datanet, [(FetchItem(contribution: m.id, kind: .blob, root: m.record.artifact), m.record.artifactSize)],
                             what: "model artifact", offline: p.has("--offline"))
    }
    let (artifact, shards) = try ngramShards(ledger, m.record.artifact)
    guard artifact.datanet == m.record.datanet, artifact.checkpointSize == m.record.checkpointSize, artifact.checkpointRoot == m.record.checkpointRoot else {
        throw CLIError.failure("the artifact of '\(terminalSafe(p.positionals[0]))' is bound to another checkpoint than its model record")
    }
    // Content withdrawn since training is left out at once, like the index's.
    let withdrawn = try ledger.reader.accepted(m.record.datanet, at: nil).withdrawn.map(\.id)
    let index = SpanIndex(shards: shards, excluding: Set(artifact.excluded).union(withdrawn))
    let steps = InfiniGram(index).generate(prompt: Array(prompt.utf8), maxBytes: maxBytes, seed: seed)
    let generated = steps.map(\.byte)
    if p.has("--json") {
        var o: [String: Any] = ["model": m.id.hex, "seed": seed, "prompt": prompt, "bytes_base64": Data(generated).base64EncodedString(),
                                "steps": steps.map { s in ["byte": Int(s.byte), "suffix": s.suffix, "candidates": s.candidates, "count": s.count,
                                                           "contributions": s.contributions.map(\.id.hex),
                                                           "listed": s.count <= InfiniGram.listLimit] as [String: Any] }]
        jsonText(generated, "text", into: &o)
        try printJSON(o)
        return 0
    }
    out(terminalSafe(prompt) + terminalSafe(String(decoding: generated, as: UTF8.self)))
    out("sources (byte, suffix matched, its count of all continuations, contributions holding it):")
    for (i, s) in steps.enumerated() {
        let shown = s.byte >= 0x20 && s.byte < 0x7f ? "'\(Character(Unicode.Scalar(s.byte)))'" : String(format: "0x%02x", s.byte)
        let who = s.count > InfiniGram.listLimit ? "\(s.count) occurrences (not listed)"
            : s.contributions.prefix(4).map { String($0.id.hex.prefix(12)) }.joined(separator: " ") + (s.contributions.count > 4 ? " … (\(s.contributions.count) in all)" : "")
        out("  \(i)  \(shown)  suffix \(s.suffix)  \(s.count)/\(s.candidates)  \(who)")
    }
    return 0
}
