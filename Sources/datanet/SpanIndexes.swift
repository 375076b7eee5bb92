import DatanetAttribution
import DatanetCrypto
import DatanetLedger
import DatanetObjects
import DatanetRecords
import DatanetStore
import Foundation
import Glibc

/// The span indexes of a store (schema/spans.md "On disk"): per Datanet a list of shards
/// (`spans/<datanet>.json`), each shard a blob in the store, materialized (every chunk
/// re-hashed, every entry checked) as a mapped file `spans/cache/<blob>.shard`.
struct SpanManifest: Codable {
    struct Entry: Codable, Equatable {
        var blob: String, from: UInt64, to: UInt64, bytes: UInt64
        /// Bytes of text (documents and separators): what a merge would hold.
        var text: UInt64?
    }
    var version = 1
    /// Shards in intake order, covering [0, last `to`) without a gap.
    var shards = [Entry]()
    /// Shards replaced (merged, rebuilt): their blobs go at the next `datanet gc`.
    var retired = [String]()

    static var directory: String { storeDir + "/spans" }
    static func path(_ d: DatanetID) -> String { directory + "/" + d.hex + ".json" }
    static func cache(_ blob: String) -> String { directory + "/cache/" + blob + ".shard" }

    /// The manifest of `d`; none (or a damaged one: the index is a cache) is an empty one.
    static func load(_ d: DatanetID) -> SpanManifest {
        guard let data = FileManager.default.contents(atPath: path(d)), var m = try? JSONDecoder().decode(SpanManifest.self, from: data), m.version == 1 else {
            return SpanManifest()
        }
        m.shards.sort { $0.from < $1.from }
        // A gap or overlap ends what is trusted: the rest is rebuilt, and retired.
        var end: UInt64 = 0
        let trusted = Array(m.shards.prefix { e in defer { end = e.to }; return e.from == end && e.to > e.from && ObjectID(hex: e.blob) != nil })
        m.retired += m.shards.dropFirst(trusted.count).map(\.blob).filter { ObjectID(hex: $0) != nil }
        m.shards = trusted
        return m
    }

    func save(_ d: DatanetID) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let data = try encoder.encode(self)
        let tmp = Self.path(d) + ".tmp-\(getpid())"
        guard FileManager.default.createFile(atPath: tmp, contents: data), rename(tmp, Self.path(d)) == 0 else {
            unlink(tmp)
            throw CLIError.failure("cannot write \(Self.path(d))")
        }
    }
}

/// Takes the store's span-index lock for `body` (one process updates indexes at a time).
func withSpanLock<T>(_ body: () throws -> T) throws -> T {
    try FileManager.default.createDirectory(atPath: SpanManifest.directory + "/cache", withIntermediateDirectories: true)
    let fd = open(SpanManifest.directory + "/lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
    guard fd >= 0 else { throw CLIError.failure("cannot open \(SpanManifest.directory)/lock") }
    defer { close(fd) }
    guard flock(fd, LOCK_EX) == 0 else { throw CLIError.failure("cannot lock \(SpanManifest.directory)/lock") }
    return try body()
}

/// Builds, loads and keeps up to date the span index of one Datanet.
struct SpanIndexes {
    let ledger: Ledger
    let datanet: DatanetState
    var manifest: SpanManifest
    let quiet: Bool
    /// The accepted contributions and files of the last checkpoint a build read: rebuilding
    /// several shards (withdrawal, merges) reads the log once.
    private var listed: (size: UInt64, contributions: [(intake: UInt64, id: RecordID, contribution: Contribution)], files: [AcceptedFile])?

    /// Loads the manifest: construct it under `withSpanLock`, so no other process changes the
    /// manifest between this load and the save.
    init(_ ledger: Ledger, _ st: DatanetState, quiet: Bool) {
        (self.ledger, datanet, self.quiet) = (ledger, st, quiet)
        manifest = SpanManifest.load(st.id)
    }

    /// The index answering for the training set at checkpoint `size` (the newest when nil):
    /// stale shards rebuilt, a shard added for intakes past the last, contributions not in that
    /// training set (withdrawn since, or accepted later) filtered out.
    mutating func index(at size: UInt64?) throws -> (index: SpanIndex, checkpoint: UInt64) {
        let at = try checkpointBinding(ledger, datanet.id, at: size)
        let accepted = try ledger.reader.accepted(datanet.id, at: at.size).items
        var shards = [SpanShard]()
        var entries = [SpanManifest.Entry]()
        for e in manifest.shards {
            guard e.from < at.size else { entries.append(e); continue } // past the checkpoint asked about
            if let s = try load(e), try isCurrent(s, accepted) { shards.append(s); entries.append(e); continue }
            let fresh = try build(e.from..<e.to, at: nil)
            manifest.retired.append(e.blob)
            entries += fresh.map(\.entry)
            shards += fresh.map(\.shard)
        }
        manifest.shards = entries
        let covered = manifest.shards.last?.to ?? 0
        if at.size > covered, accepted.contains(where: { $0.intake >= covered }) {
            let fresh = try build(covered..<at.size, at: at)
            manifest.shards += fresh.map(\.entry)
            shards += fresh.map(\.shard)
        }
        try manifest.save(datanet.id)
        let inSet = Set(accepted.map(\.id))
        let excluded = Set(shards.flatMap { $0.contributions.map(\.id) }).subtracting(inSet)
        return (SpanIndex(shards: shards, excluding: excluded), at.size)
    }

    /// Whether a shard holds every contribution of the training set in its range: one accepted
    /// since it was built, or whose content was fetched since, makes it stale.
    func isCurrent(_ s: SpanShard, _ accepted: [(intake: UInt64, id: RecordID, contribution: Contribution)]) throws -> Bool {
        let held = Dictionary(s.contributions.map { ($0.id, $0.state) }, uniquingKeysWith: { a, _ in a })
        for a in accepted where a.intake >= s.binding.from && a.intake < s.binding.to {
            switch held[a.id] {
            case nil: return false
            case .notHeld?:
                if try ledger.reader.holdsObject(a.contribution.content, kind: a.contribution.contentKind == .blob ? .blob : .tree) { return false }
            default: continue
            }
        }
        return true
    }

    /// The shard of `e` from its cache file, else materialized from its blob (nil when the
    /// store lacks it or it is damaged: the caller rebuilds).
    func load(_ e: SpanManifest.Entry) throws -> SpanShard? {
        let path = SpanManifest.cache(e.blob)
        if let s = try? SpanShard(mapping: path), s.binding.datanet == datanet.id, s.binding.from == e.from, s.binding.to == e.to { return s }
        unlink(path)
        guard let id = ObjectID(hex: e.blob), try ledger.store.blob(id) != nil else { return nil }
        let tmp = path + ".tmp-\(getpid())"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw CLIError.failure("cannot create \(tmp)") }
        do {
            defer { close(fd) }
            try ledger.store.writeBlob(id, to: fd)
        } catch { unlink(tmp); return nil }
        guard let s = try? SpanShard(mapping: tmp), (try? s.checkEntries()) != nil, s.binding.datanet == datanet.id,
              s.binding.from == e.from, s.binding.to == e.to, rename(tmp, path) == 0 else { unlink(tmp); return nil }
        return s
    }

    /// Builds the shards of the intakes in `range` from the training set at `at` (the newest
    /// checkpoint when nil): one, or more when the text passes a shard's bound, split between
    /// contributions. Each is stored as a blob and cached.
    mutating func build(_ range: Range<UInt64>, at: (size: UInt64, root: Digest)?) throws -> [(entry: SpanManifest.Entry, shard: SpanShard)] {
        let at = try at ?? checkpointBinding(ledger, datanet.id, at: nil)
        // Every accepted contribution in the range is listed (one without files too), so the
        // shard is not taken for stale.
        if listed?.size != at.size {
            listed = (at.size, try ledger.reader.accepted(datanet.id, at: at.size).items, try ledger.acceptedFiles(datanet.id, at: at.size))
        }
        let contributions = listed!.contributions.filter { range.contains($0.intake) }
        var filesOf = [RecordID: [AcceptedFile]]()
        for f in listed!.files where range.contains(f.intake) { filesOf[f.contribution, default: []].append(f) }
        let total = filesOf.values.joined().reduce(0) { $0 + Int(min($1.size, 1 << 31)) + 1 }
        let bar = ProgressBar(total: UInt64(total), label: "index \(datanet.policy.name)", quiet: quiet)
        defer { bar.finish() }
        var out = [(entry: SpanManifest.Entry, shard: SpanShard)]()
        func binding(_ from: UInt64, _ to: UInt64) -> SpanShard.Binding {
            .init(datanet: datanet.id, checkpointRoot: at.root, checkpointSize: at.size, from: from, to: to)
        }
        var builder = SpanShardBuilder(binding(range.lowerBound, range.upperBound), reserving: min(total, SpanShard.maximumText))
        var done = 0
        for c in contributions {
            let files = filesOf[c.id] ?? []
            let documents = try readDocuments(files)
            let bytes = documents.1.reduce(0) { $0 + $1.bytes.count + 1 }
            if builder.textCount > 0, builder.textCount + bytes > SpanShard.maximumText {
                builder.binding.to = c.intake
                out.append(try store(builder))
                builder = SpanShardBuilder(binding(c.intake, range.upperBound), reserving: min(max(0, total - done), SpanShard.maximumText))
            }
            let fits = bytes <= SpanShard.maximumText
            let index = builder.add(.init(id: c.id, intake: c.intake, state: fits ? documents.0 : .malformed))
            if fits {
                for d in documents.1 {
                    do { try builder.append(d.bytes, contribution: index, path: d.path, line: d.line) } catch { throw CLIError.failure("\(error)") }
                }
            }
            done += files.reduce(0) { $0 + Int(min($1.size, 1 << 31)) + 1 }
            bar.update(UInt64(done))
        }
        out.append(try store(builder))
        return out
    }

    /// The documents of one contribution's files (schema/spans.md "Documents"): each text or
    /// Markdown file whole, each JSON Lines record's `text`; none and a reason when its
    /// content is not held or a file breaks its format (the training set leaves it out).
    func readDocuments(_ files: [AcceptedFile]) throws -> (SpanShard.Contribution.State, [(path: String, line: Int, bytes: [UInt8])]) {
        var out = [(path: String, line: Int, bytes: [UInt8])]()
        for f in files {
            guard let blob = try ledger.store.blob(f.content) else { return (.notHeld, []) }
            guard blob.size <= 1 << 31 else { return (.malformed, []) }
            // Every chunk re-hashed as it is read: one missing or damaged is content not held.
            guard let bytes = try? ledger.store.blobBytes(f.content, limit: 1 << 31) else { return (.notHeld, []) }
            switch try? TrainingContent.read(name: f.path, bytes: bytes) {
            case .document(let text)?: out.append((f.path, 0, Array(text.utf8)))
            case .labeledText(let lines)?: out += lines.map { (f.path, $0.line, Array($0.text.utf8)) }
            case nil: return (.malformed, [])
            default: continue
            }
        }
        return (.indexed, out)
    }

    /// Writes a shard to a file, stores it as a blob (kept like anything added) and moves
    /// the file to the cache under the blob's id.
    func store(_ builder: SpanShardBuilder) throws -> (entry: SpanManifest.Entry, shard: SpanShard) {
        let tmp = SpanManifest.directory + "/cache/build-\(getpid())-\(UInt32.random(in: 0 ... .max))"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw CLIError.failure("cannot create \(tmp)") }
        do {
            defer { close(fd) }
            try builder.write { try writeRaw(fd, $0, path: tmp) }
            let added = try Ingest(store: ledger.store).add(paths: [tmp])[0]
            let path = SpanManifest.cache(added.id.hex)
            guard rename(tmp, path) == 0 else { throw CLIError.failure("cannot move the shard to \(path)") }
            guard let shard = try? SpanShard(mapping: path) else { unlink(path); throw CLIError.failure("the shard written to \(path) does not read back") }
            return (.init(blob: added.id.hex, from: builder.binding.from, to: builder.binding.to, bytes: added.size, text: UInt64(builder.textCount)), shard)
        } catch {
            unlink(tmp)
            throw error
        }
    }

    /// Rebuilds every shard holding a contribution now under a tombstone (the index holds text
    /// verbatim; `datanet gc` calls this); the old shards are retired.
    mutating func dropWithdrawn() throws {
        let withdrawn = Set(try ledger.reader.accepted(datanet.id, at: nil).withdrawn.map(\.id))
        guard !withdrawn.isEmpty else { return }
        var entries = [SpanManifest.Entry]()
        for e in manifest.shards {
            if let s = try load(e), !s.contributions.contains(where: { $0.state == .indexed && withdrawn.contains($0.id) }) {
                entries.append(e)
                continue
            }
            let fresh = try build(e.from..<e.to, at: nil)
            manifest.retired.append(e.blob)
            entries += fresh.map(\.entry)
        }
        manifest.shards = entries
        try manifest.save(datanet.id)
    }

    /// Merges the two adjacent shards of fewest bytes that fit one shard, while there are more
    /// than `limit` (rebuilt as one from the newest checkpoint's training set); the old ones are
    /// retired. Reloads the manifest first (call under `withSpanLock`).
    mutating func merge(above limit: Int = 8) throws {
        manifest = SpanManifest.load(datanet.id)
        while manifest.shards.count > limit {
            let s = manifest.shards
            // Text bytes (or, for an entry from before they were kept, a fifth of the shard's bytes).
            // (Clamped: a damaged manifest's numbers must not overflow the sums below.)
            func text(_ e: SpanManifest.Entry) -> UInt64 { min(e.text ?? e.bytes / 5, UInt64(SpanShard.maximumText) + 1) }
            let pairs = s.indices.dropLast().filter { text(s[$0]) + text(s[$0 + 1]) <= UInt64(SpanShard.maximumText) }
            guard let i = pairs.min(by: { text(s[$0]) + text(s[$0 + 1]) < text(s[$1]) + text(s[$1 + 1]) }) else { break }
            let fresh = try build(s[i].from..<s[i + 1].to, at: nil)
            manifest.retired += [s[i].blob, s[i + 1].blob]
            manifest.shards.replaceSubrange(i...(i + 1), with: fresh.map(\.entry))
            if fresh.count > 1 { break } // more text than the manifest said: leave it
        }
        try manifest.save(datanet.id)
    }
}

/// `datanet gc`'s part in span indexes: shards holding withdrawn content rebuilt; then the
/// blobs of retired shards, and of any shard or ∞-gram artifact stored by an index build that no
/// manifest lists (a crash, a lost manifest), released to the sweep (a model's artifact stays
/// while its model is held); their cache files, and files a crash left, removed.
func collectGarbage(_ ledger: Ledger, dryRun: Bool) throws -> GarbageReport {
    guard !dryRun, FileManager.default.fileExists(atPath: SpanManifest.directory) else { return try ledger.collectGarbage(dryRun: dryRun) }
    return try withSpanLock {
        var indexes = [SpanIndexes]()
        for st in try ledger.reader.datanets() where FileManager.default.fileExists(atPath: SpanManifest.path(st.id)) {
            var x = SpanIndexes(ledger, st, quiet: true)
            do { try x.dropWithdrawn() } catch {
                errLine("datanet: the span index of \(st.policy.name) keeps its shards: \(error)")
            }
            indexes.append(x)
        }
        let current = Set(indexes.flatMap { $0.manifest.shards.map(\.blob) })
        var released = Set(indexes.flatMap(\.manifest.retired).compactMap { ObjectID(hex: $0) })
        let cache = SpanManifest.directory + "/cache/"
        for a in try ledger.store.addedObjects() where a.path.hasPrefix(cache + "build-") || a.path.hasPrefix(cache + "ngram-") { released.insert(a.id) }
        released = released.filter { !current.contains($0.hex) }
        let report = try ledger.collectGarbage(dryRun: false, releasing: released)
        for var x in indexes {
            x.manifest.retired = []
            try x.manifest.save(x.datanet.id)
        }
        // Cache files of shards no manifest lists, of artifacts the store no longer holds, and
        // what an interrupted build left (no build runs while the lock is held).
        for name in (try? FileManager.default.contentsOfDirectory(atPath: cache)) ?? [] {
            let blob = String(name.prefix(64))
            let keep: Bool
            if name.hasSuffix(".shard"), name.count == 70 { keep = current.contains(blob) }
            else if name.hasSuffix(".header") || name.hasSuffix(".shard"), let id = ObjectID(hex: blob) { keep = try ledger.store.blob(id) != nil && !name.contains(".tmp-") }
            else { keep = false }
            if !keep { unlink(cache + name) }
        }
        return report
    }
}

/// Writes all of `bytes` to `fd`, retrying on EINTR and short writes.
func writeRaw(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws {
    var at = 0
    while at < bytes.count {
        let n = write(fd, bytes.baseAddress! + at, bytes.count - at)
        if n < 0 && errno == EINTR { continue }
        guard n > 0 else { throw CLIError.failure("cannot write \(path): \(String(cString: strerror(errno)))") }
        at += n
    }
}
