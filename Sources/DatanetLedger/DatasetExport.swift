import DatanetCBOR
import DatanetCrypto
import DatanetStore
import Foundation
import Glibc

/// One accepted contribution as written by `datanet export` (a line of MANIFEST.jsonl).
public struct ManifestEntry: Codable, Sendable, Equatable {
    /// Relative to the export folder.
    public var path: String
    public var kind: String
    public var content: String
    public var contribution: String
    public var author: String
    public var license: String
    public var mediaType: String
    public var size: UInt64
    public var intakeIndex: UInt64

    enum CodingKeys: String, CodingKey {
        case path, kind, content, contribution, author, license, size
        case mediaType = "media_type", intakeIndex = "intake_index"
    }
}

/// The accepted contributions of a Datanet at a checkpoint, written as plain files.
public struct DatasetExport: Sendable {
    public var name: String
    public var datanet: Digest
    public var checkpoint: String
    public var entries: [ManifestEntry]
}

extension Ledger {
    /// The contributions accepted at a checkpoint size (the newest when nil) and not under a
    /// tombstone by then, in intake order.
    public func accepted(_ d: Digest, at size: UInt64?) throws -> (note: String, items: [(UInt64, Envelope, Contribution)]) {
        let table = try leavesTable(d, create: false)
        return try env.read { txn in
            let note: String
            if let size {
                guard let b = try txn.get(checkpoints, Self.key(d, size)) else {
                    throw LedgerRefusal.notAllowed("no checkpoint of size \(size) is held here (`datanet log` lists the log)")
                }
                note = String(decoding: b, as: UTF8.self)
            } else {
                guard let n = try latestCheckpointNote(txn, d) else { throw LedgerRefusal.notAllowed("no checkpoint of \(d.hex) is held here") }
                note = n
            }
            let end = try Checkpoint.unverified(note: note).size
            var intakes = [UInt64: (Envelope, Contribution)]()
            var accepted = [UInt64]()
            var withdrawn = Set<UInt64>()
            try txn.scan(table) { k, v in
                let i = Self.u64(k)
                guard i < end else { return false }
                let leaf = try Leaf(encoded: Array(v))
                if leaf.kind == .intake, case .contribution(let c) = try Record(try leaf.envelope(4)) { intakes[i] = (try leaf.envelope(4), c) }
                if leaf.kind == .decision, try leaf.unsigned(3) == 1 { accepted.append(try leaf.unsigned(2)) }
                if leaf.kind == .tombstone { withdrawn.insert(try leaf.unsigned(3)) }
                return true
            }
            return (note, accepted.sorted().filter { !withdrawn.contains($0) }.compactMap { i in intakes[i].map { (i, $0.0, $0.1) } })
        }
    }

    /// Writes the accepted contributions at a checkpoint into `dir` (which must not exist):
    /// `data/<intake index>-<name>` per contribution, MANIFEST.jsonl, DATASET.md and CHECKPOINT.
    /// The folder appears complete or not at all: it is written under a temporary name and renamed.
    public func exportDataset(_ d: Digest, at size: UInt64?, to final: String, progress: ((UInt64) -> Void)? = nil) throws -> DatasetExport {
        guard access(final, F_OK) != 0 else { throw StoreError.io(path: final, operation: "create", errno: EEXIST) }
        let dir = final + ".partial-\(getpid())"
        do {
            let x = try exportDataset(d, at: size, into: dir, progress: progress)
            guard rename(dir, final) == 0 else { throw StoreError.io(path: final, operation: "create", errno: errno) }
            return x
        } catch {
            try? FileManager.default.removeItem(atPath: dir)
            throw error
        }
    }

    private func exportDataset(_ d: Digest, at size: UInt64?, into dir: String, progress: ((UInt64) -> Void)?) throws -> DatasetExport {
        let st = try state(of: d)
        let (note, items) = try accepted(d, at: size)
        guard mkdir(dir, 0o755) == 0 else { throw StoreError.io(path: dir, operation: "create", errno: errno) }
        guard mkdir(dir + "/data", 0o755) == 0 else { throw StoreError.io(path: dir + "/data", operation: "create", errno: errno) }
        var entries = [ManifestEntry]()
        var done: UInt64 = 0
        for (index, envelope, c) in items {
            let sidecar = try self.sidecar(of: c)
            let path = "data/" + String(format: "%08llu", index) + "-" + Self.safeName(sidecar?.fileName ?? "", fallback: c.content.hex)
            try writeContent(c.content, kind: c.contentKind == .blob ? .blob : .tree, to: dir + "/" + path)
            done += c.size
            progress?(done)
            entries.append(ManifestEntry(path: path, kind: c.contentKind == .blob ? "blob" : "tree", content: c.content.hex,
                                         contribution: envelope.id.hex, author: c.author.description, license: c.license,
                                         mediaType: c.mediaType, size: c.size, intakeIndex: index))
        }
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var manifest = Data()
        for entry in entries { manifest += try e.encode(entry) + Data("\n".utf8) }
        let export = DatasetExport(name: st.policy.name, datanet: d, checkpoint: note, entries: entries)
        try write(manifest, dir + "/MANIFEST.jsonl")
        try write(Data(note.utf8), dir + "/CHECKPOINT")
        try write(Data(Self.card(export).utf8), dir + "/DATASET.md")
        return export
    }

    private func write(_ data: Data, _ path: String) throws {
        guard FileManager.default.createFile(atPath: path, contents: data) else { throw StoreError.io(path: path, operation: "write", errno: errno) }
    }

    /// Writes a blob as a file or a tree as a folder.
    private func writeContent(_ id: Digest, kind: ObjectKind, to path: String) throws {
        switch kind {
        case .blob:
            let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw StoreError.io(path: path, operation: "create", errno: errno) }
            defer { close(fd) }
            try store.writeBlob(id, to: fd)
        case .tree:
            guard let tree = try store.tree(id) else { throw StoreError.notFound(id: id.hex) }
            guard mkdir(path, 0o755) == 0 else { throw StoreError.io(path: path, operation: "create", errno: errno) }
            for e in tree.entries { try writeContent(e.id, kind: e.kind, to: path + "/" + String(decoding: e.name, as: UTF8.self)) }
        case .chunk:
            throw StoreError.corrupt("a contribution names a chunk")
        }
    }

    /// A file name from a sidecar's: no slashes, control characters or leading dots; at most 100 bytes.
    static func safeName(_ text: String, fallback: String) -> String {
        var out = String(text.unicodeScalars.map { $0 == "/" || $0.value < 0x20 || $0.value == 0x7f ? "_" : Character($0) })
        while out.hasPrefix(".") { out.removeFirst() }
        while out.utf8.count > 100 { out.removeLast() }
        return out.isEmpty ? fallback : out
    }

    /// The DATASET.md card: what a model trainer needs to know and check.
    static func card(_ x: DatasetExport) -> String {
        let cp = (try? Checkpoint.unverified(note: x.checkpoint))
        var licenses = [String: Int](), authors = [String: (Int, UInt64)]()
        for e in x.entries {
            licenses[e.license, default: 0] += 1
            authors[e.author, default: (0, 0)].0 += 1
            authors[e.author, default: (0, 0)].1 += e.size
        }
        var s = "# \(x.name)\n\nAccepted contributions of the Datanet `\(x.datanet.hex)` at its checkpoint of size \(cp?.size ?? 0)"
        s += " (root `\(cp?.root.hex ?? "?")`, signed note in `CHECKPOINT`).\n\n"
        s += "- contributions: \(x.entries.count)\n- bytes: \(x.entries.reduce(0) { $0 + $1.size })\n\n## Licenses\n\n| license | contributions |\n|---|---|\n"
        for (l, n) in licenses.sorted(by: { $0.key < $1.key }) { s += "| \(l.isEmpty ? "(none given)" : l) | \(n) |\n" }
        s += "\n## Contributors\n\n| author key | contributions | bytes |\n|---|---|---|\n"
        for (a, v) in authors.sorted(by: { $0.key < $1.key }) { s += "| `\(a)` | \(v.0) | \(v.1) |\n" }
        s += "\n## Checking it\n\n`MANIFEST.jsonl` lists every file with its content id, contribution id, author, license and intake index.\n"
        s += "`datanet verify --manifest DIR` recomputes every content id; in a store that holds this Datanet's log it also checks that\n"
        s += "each contribution was accepted at this checkpoint. `datanet receipt ID` gives a contribution's full provenance.\n"
        return s
    }
}

extension DatasetExport {
    /// Checks an exported folder: MANIFEST.jsonl parses, every listed path stays inside the
    /// folder and recomputes to its content id, no file under data/ is unlisted, and — when
    /// `ledger` holds the Datanet's log — the checkpoint is this log's and every contribution
    /// was accepted at it.
    public static func verify(dir: String, ledger: Ledger?) throws -> [VerificationCheck] {
        guard let manifest = FileManager.default.contents(atPath: dir + "/MANIFEST.jsonl") else {
            throw StoreError.io(path: dir + "/MANIFEST.jsonl", operation: "read", errno: errno == 0 ? ENOENT : errno)
        }
        var checks = [VerificationCheck]()
        var entries = [ManifestEntry]()
        for (n, line) in manifest.split(separator: UInt8(ascii: "\n")).enumerated() {
            guard let e = try? JSONDecoder().decode(ManifestEntry.self, from: Data(line)) else {
                return [VerificationCheck("MANIFEST.jsonl", .fail, "line \(n + 1) is not a manifest entry")]
            }
            entries.append(e)
        }
        var listed = Set<String>()
        for e in entries {
            let parts = e.path.split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count == 2, parts[0] == "data", !parts[1].isEmpty, !parts[1].hasPrefix(".") else {
                checks.append(VerificationCheck(e.path, .fail, "path is not data/<name>")); continue
            }
            listed.insert(String(parts[1]))
            do {
                let (kind, id, _) = try ContentID.of(path: dir + "/" + e.path)
                let ok = id.hex == e.content && kind.description == e.kind
                checks.append(VerificationCheck(e.path, ok ? .pass : .fail, ok ? "\(e.kind) \(e.content.prefix(16))…" : "content is \(kind) \(id.hex), manifest says \(e.kind) \(e.content)"))
            } catch {
                checks.append(VerificationCheck(e.path, .fail, "\(error)"))
            }
        }
        let present = (try? FileManager.default.contentsOfDirectory(atPath: dir + "/data")) ?? []
        for name in present.sorted() where !listed.contains(name) {
            checks.append(VerificationCheck("data/" + name, .fail, "not listed in MANIFEST.jsonl"))
        }
        checks.append(logCheck(dir: dir, entries: entries, ledger: ledger))
        return checks
    }

    private static func logCheck(dir: String, entries: [ManifestEntry], ledger: Ledger?) -> VerificationCheck {
        let name = "accepted at the checkpoint"
        guard let note = FileManager.default.contents(atPath: dir + "/CHECKPOINT").map({ String(decoding: $0, as: UTF8.self) }),
              let cp = try? Checkpoint.unverified(note: note), cp.origin.hasPrefix("datanet/"),
              let d = Digest(hex: String(cp.origin.dropFirst("datanet/".count))) else {
            return VerificationCheck(name, .fail, "CHECKPOINT is missing or not a Datanet checkpoint")
        }
        guard let ledger, let held = try? ledger.accepted(d, at: cp.size) else {
            return VerificationCheck(name, .notApplicable, "this store does not hold the log of \(d.hex) at size \(cp.size)")
        }
        guard held.note == note else { return VerificationCheck(name, .fail, "this store's checkpoint of size \(cp.size) differs from CHECKPOINT") }
        let accepted = Dictionary(held.items.map { ($0.1.id.hex, ($0.0, $0.2)) }, uniquingKeysWith: { a, _ in a })
        for e in entries {
            guard let (index, c) = accepted[e.contribution], index == e.intakeIndex, c.content.hex == e.content,
                  c.author.description == e.author, c.license == e.license else {
                return VerificationCheck(name, .fail, "\(e.path): contribution \(e.contribution.prefix(16))… is not accepted as listed at size \(cp.size)")
            }
        }
        return VerificationCheck(name, .pass, "\(entries.count) contribution(s) accepted in this store's log at size \(cp.size)")
    }
}
