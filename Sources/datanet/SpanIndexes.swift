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
    struct Entry: Codable, Equatable { var blob: String, from: UInt64, to: UInt64, bytes: UInt64 }
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
        // A gap or overlap ends what is trusted: the rest is rebuilt.
        var end: UInt64 = 0
        m.shards = Array(m.shards.prefix { e in defer { end = e.to }; return e.from == end && e.to > e.from && ObjectID(hex: e.blob) != nil })
        return m
    }

    func save(_ d: DatanetID) throws {
        let data = try JSONEncoder().encode(self)
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
    /// Shards built by this process (for the summary).
    var built = 0
    let quiet: Bool

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
        let files = try ledger.acceptedFiles(datanet.id, at: at.size).filter { range.contains($0.intake) }
        var groups = [[AcceptedFile]]()
        for f in files { if groups.last?.first?.contribution == f.contribution { groups[groups.count - 1].append(f) } else { groups.append([f]) } }
        let total = files.reduce(0) { $0 + Int(min($1.size, 1 << 31)) + 1 }
        let bar = ProgressBar(total: UInt64(total), label: "index \(datanet.policy.name)", quiet: quiet)
        defer { bar.finish() }
        var out = [(entry: SpanManifest.Entry, shard: SpanShard)]()
        func binding(_ from: UInt64, _ to: UInt64) -> SpanShard.Binding {
            .init(datanet: datanet.id, checkpointRoot: at.root, checkpointSize: at.size, from: from, to: to)
        }
        var builder = SpanShardBuilder(binding(range.lowerBound, range.upperBound), reserving: min(total, SpanShard.maximumText))
        var done = 0
        for group in groups {
            let documents = try readDocuments(group)
            let bytes = documents.1.reduce(0) { $0 + $1.bytes.count + 1 }
            if builder.textCount > 0, builder.textCount + bytes > SpanShard.maximumText {
                builder.binding.to = group[0].intake
                out.append(try store(builder))
                builder = SpanShardBuilder(binding(group[0].intake, range.upperBound), reserving: min(total - done, SpanShard.maximumText))
            }
            let fits = bytes <= SpanShard.maximumText
            let c = builder.add(.init(id: group[0].contribution, intake: group[0].intake, state: fits ? documents.0 : .malformed))
            if fits {
                for d in documents.1 {
                    do { try builder.append(d.bytes, contribution: c, path: d.path, line: d.line) } catch { throw CLIError.failure("\(error)") }
                }
            }
            done += group.reduce(0) { $0 + Int(min($1.size, 1 << 31)) + 1 }
            bar.update(UInt64(done))
        }
        out.append(try store(builder))
        built += out.count
        return out
    }

    /// The documents of one contribution's files (schema/spans.md "Documents"): each text or
    /// Markdown file whole, each JSON Lines record's `text`; none and a reason when its
    /// content is not held or a file breaks its format (the training set leaves it out).
    func readDocuments(_ files: [AcceptedFile]) throws -> (SpanShard.Contribution.State, [(path: String, line: Int, bytes: [UInt8])]) {
        var out = [(path: String, line: Int, bytes: [UInt8])]()
        for f in files {
            guard let blob = try ledger.store.blob(f.content) else { return (.notHeld, []) }
            guard blob.size <= 1 << 31, let bytes = try ledger.store.blobBytes(f.content, limit: 1 << 31) else { return (.malformed, []) }
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
            let shard = try SpanShard(mapping: path)
            return (.init(blob: added.id.hex, from: builder.binding.from, to: builder.binding.to, bytes: added.size), shard)
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

    /// Merges the two adjacent shards of fewest bytes while there are more than `limit`
    /// (rebuilt from the training set at the newest checkpoint); the old ones are retired.
    mutating func merge(above limit: Int = 8) throws {
        while manifest.shards.count > limit {
            let pairs = manifest.shards.indices.dropLast()
            let i = pairs.min { manifest.shards[$0].bytes + manifest.shards[$0 + 1].bytes < manifest.shards[$1].bytes + manifest.shards[$1 + 1].bytes }!
            let (a, b) = (manifest.shards[i], manifest.shards[i + 1])
            let fresh = try build(a.from..<b.to, at: nil)
            manifest.retired += [a.blob, b.blob]
            manifest.shards.replaceSubrange(i...(i + 1), with: fresh.map(\.entry))
            if fresh.count > 1 { break } // the pair holds more than one shard's worth of text
        }
        try manifest.save(datanet.id)
    }
}

/// `datanet gc`'s part in span indexes: shards holding withdrawn content rebuilt, then the
/// retired shards' blobs released to the sweep and their cache files removed.
func collectGarbage(_ ledger: Ledger, dryRun: Bool) throws -> GarbageReport {
    guard !dryRun, FileManager.default.fileExists(atPath: SpanManifest.directory) else { return try ledger.collectGarbage(dryRun: dryRun) }
    return try withSpanLock {
        var indexes = [SpanIndexes]()
        for st in try ledger.reader.datanets() where FileManager.default.fileExists(atPath: SpanManifest.path(st.id)) {
            var x = SpanIndexes(ledger, st, quiet: true)
            try x.dropWithdrawn()
            indexes.append(x)
        }
        let current = Set(indexes.flatMap { $0.manifest.shards.map(\.blob) })
        let retired = Set(indexes.flatMap(\.manifest.retired)).subtracting(current)
        let report = try ledger.collectGarbage(dryRun: false, releasing: Set(retired.compactMap { ObjectID(hex: $0) }))
        for var x in indexes {
            for b in x.manifest.retired where !current.contains(b) { unlink(SpanManifest.cache(b)) }
            x.manifest.retired = []
            try x.manifest.save(x.datanet.id)
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
