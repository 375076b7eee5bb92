import DatanetCBOR
import DatanetCrypto
import DatanetObjects
import DatanetRecords
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
    /// Manifest v2: a file's SHA-256 (hex), for tools that know no content ids; absent for a folder.
    public var sha256: String?
    /// Manifest v2: a folder's files (paths inside it in their written form), absent for a file.
    public var files: [ManifestFile]?
    /// Manifest v2: the contribution's label and free metadata, when its sidecar is held.
    public var label: String?
    public var metadata: [String: String]?

    enum CodingKeys: String, CodingKey {
        case path, kind, content, contribution, author, license, size, sha256, files, label, metadata
        case mediaType = "media_type", intakeIndex = "intake_index"
    }
}

/// A file inside an exported folder contribution (manifest v2).
public struct ManifestFile: Codable, Sendable, Equatable {
    public var path: String
    public var size: UInt64
    public var sha256: String
}

/// The first line of a v2 MANIFEST.jsonl: what it is, of which checkpoint, in which layout.
public struct ManifestHeader: Codable, Sendable, Equatable {
    public static let format = "datanet/manifest/v2"
    public var format: String
    public var datanet: String
    public var size: UInt64
    /// `files`, `croissant` or `hf` (ExportLayout).
    public var layout: String
}

/// What an export writes besides the files and their manifest.
public enum ExportLayout: String, Sendable, CaseIterable {
    /// Files, MANIFEST.jsonl, CHECKPOINT and DATASET.md.
    case files
    /// Also `croissant.json`: Croissant 1.1 metadata (ExportFormats.swift).
    case croissant
    /// Also `README.md`: a Hugging Face dataset card whose configs `datasets.load_dataset` reads.
    case hf
}

/// The accepted contributions of a Datanet at a checkpoint, written as plain files.
public struct DatasetExport: Sendable {
    public var name: String
    public var datanet: DatanetID
    public var checkpoint: String
    public var entries: [ManifestEntry]
    public var layout: ExportLayout = .files

    /// The sizes the records claim, summed without overflow (a claim may be any u64).
    public var totalBytes: UInt64 { entries.reduce(0) { $0.saturatingAdding($1.size) } }
}

extension UInt64 {
    /// `self + x`, or `UInt64.max` where that overflows.
    public func saturatingAdding(_ x: UInt64) -> UInt64 {
        let (v, overflow) = addingReportingOverflow(x)
        return overflow ? .max : v
    }
}

/// The contributions accepted at a checkpoint, as this store's log tells them.
public struct AcceptedContributions: Sendable {
    /// The checkpoint's signed note.
    public var note: String
    /// Accepted at the checkpoint and under no tombstone anywhere in this store's log (later
    /// tombstones included), in intake order.
    public var items: [(intake: UInt64, id: RecordID, contribution: Contribution)]
    /// Accepted at the checkpoint but withdrawn or taken down since, with the tombstone's leaf index.
    public var withdrawn: [(intake: UInt64, id: RecordID, contribution: Contribution, tombstone: UInt64)]
}

extension Ledger {

    /// Writes the accepted contributions at a checkpoint into `dir` (which must not exist):
    /// `data/<intake index>-<name>` per contribution, MANIFEST.jsonl, DATASET.md and CHECKPOINT.
    /// The folder appears complete or not at all: it is written under a temporary name and renamed.
    public func exportDataset(_ d: DatanetID, at size: UInt64?, to final: String, layout: ExportLayout = .files,
                              progress: ((UInt64) -> Void)? = nil) throws -> DatasetExport {
        guard access(final, F_OK) != 0 else { throw StoreError.io(path: final, operation: "create", errno: EEXIST) }
        let dir = final + ".partial-\(getpid())"
        do {
            let x = try exportDataset(d, at: size, into: dir, layout: layout, progress: progress)
            guard rename(dir, final) == 0 else { throw StoreError.io(path: final, operation: "create", errno: errno) }
            return x
        } catch {
            try? FileManager.default.removeItem(atPath: dir)
            throw error
        }
    }

    /// Refreshes an export made earlier (`export --update`) to the checkpoint of `size` (the
    /// newest when nil), in its layout unless `layout` names another: the new folder is written
    /// beside it and swapped in, so DIR is the old export or the new one, never a mix. Returns
    /// the new export and the entries of the old one. Refuses a folder that is not an export
    /// of this Datanet.
    public func updateExport(_ d: DatanetID, at size: UInt64?, dir: String, layout: ExportLayout?,
                             progress: ((UInt64) -> Void)? = nil) throws -> (DatasetExport, old: [ManifestEntry]) {
        let manifest = try DatasetExport.readRegularFile(dir + "/MANIFEST.jsonl", limit: DatasetExport.maximumManifest)
        let (header, old) = try DatasetExport.parse(manifest: manifest)
        let note = (try? DatasetExport.readRegularFile(dir + "/CHECKPOINT", limit: 64 << 10)).map { String(decoding: $0, as: UTF8.self) }
        let origin = note.flatMap { try? Checkpoint.unverified(note: $0).origin }
        guard origin == Checkpoint.origin(of: d), header.map({ $0.datanet == d.hex }) ?? true else {
            throw LedgerStateError.notAnExport(dir, datanet: d.hex)
        }
        let fresh = dir + ".update-\(getpid())", retired = dir + ".old-\(getpid())"
        do {
            let x = try exportDataset(d, at: size, into: fresh, layout: layout ?? header.flatMap { ExportLayout(rawValue: $0.layout) } ?? .files, progress: progress)
            guard rename(dir, retired) == 0 else { throw StoreError.io(path: dir, operation: "replace", errno: errno) }
            guard rename(fresh, dir) == 0 else {
                let e = errno
                _ = rename(retired, dir)
                throw StoreError.io(path: dir, operation: "replace", errno: e)
            }
            try? FileManager.default.removeItem(atPath: retired)
            return (x, old)
        } catch {
            try? FileManager.default.removeItem(atPath: fresh)
            throw error
        }
    }

    private func exportDataset(_ d: DatanetID, at size: UInt64?, into dir: String, layout: ExportLayout, progress: ((UInt64) -> Void)?) throws -> DatasetExport {
        let st = try reader.state(of: d)
        let set = try reader.accepted(d, at: size)
        let (note, items) = (set.note, set.items)
        guard mkdir(dir, 0o755) == 0 else { throw StoreError.io(path: dir, operation: "create", errno: errno) }
        guard mkdir(dir + "/data", 0o755) == 0 else { throw StoreError.io(path: dir + "/data", operation: "create", errno: errno) }
        var entries = [ManifestEntry]()
        var done: UInt64 = 0
        for (index, id, c) in items {
            let sidecar = try self.reader.sidecar(of: c)
            let name = Self.exportedName(intake: index, sidecar: sidecar, content: c.content)
            let path = "data/" + name
            try writeContent(c.content, kind: c.contentKind == .blob ? .blob : .tree, to: dir + "/" + path)
            done = done.saturatingAdding(c.size)
            progress?(done)
            var entry = ManifestEntry(path: path, kind: c.contentKind == .blob ? "blob" : "tree", content: c.content.hex,
                                      contribution: id.hex, author: c.author.description, license: c.license,
                                      mediaType: c.mediaType, size: c.size, intakeIndex: index)
            // What tools without content ids check: each file's SHA-256, read back from the disk.
            if c.contentKind == .blob {
                entry.sha256 = try fileSHA256(dir + "/" + path).hex
            } else {
                entry.files = try files(of: c, id: id, intake: index, sidecar: try reader.sidecar(of: c)).map { f in
                    ManifestFile(path: String(decoding: f.path.utf8.dropFirst(name.utf8.count + 1), as: UTF8.self), size: f.size, sha256: try fileSHA256(dir + "/data/" + f.path).hex)
                }
            }
            (entry.label, entry.metadata) = (sidecar?.label, sidecar?.metadata)
            entries.append(entry)
        }
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let end = try Checkpoint.unverified(note: note).size
        var manifest = try e.encode(ManifestHeader(format: ManifestHeader.format, datanet: d.hex, size: end, layout: layout.rawValue)) + Data("\n".utf8)
        for entry in entries { manifest += try e.encode(entry) + Data("\n".utf8) }
        let export = DatasetExport(name: st.policy.name, datanet: d, checkpoint: note, entries: entries, layout: layout)
        try write(manifest, dir + "/MANIFEST.jsonl")
        try write(Data(note.utf8), dir + "/CHECKPOINT")
        try write(Data(Self.card(export).utf8), dir + "/DATASET.md")
        switch layout {
        case .files: break
        case .croissant: try write(try ExportFormats.croissant(export, dir: dir), dir + "/croissant.json")
        case .hf: try write(Data(try ExportFormats.huggingFaceCard(export, dir: dir).utf8), dir + "/README.md")
        }
        return export
    }


    private func write(_ data: Data, _ path: String) throws {
        guard FileManager.default.createFile(atPath: path, contents: data) else { throw StoreError.io(path: path, operation: "write", errno: errno) }
    }

    /// Writes a blob as a file or a tree as a folder.
    private func writeContent(_ id: ObjectID, kind: ObjectKind, to path: String) throws {
        switch kind {
        case .blob:
            let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw StoreError.io(path: path, operation: "create", errno: errno) }
            defer { close(fd) }
            try store.writeBlob(id, to: fd)
        case .tree:
            guard let tree = try store.tree(id) else { throw StoreError.notFound(id: id.hex) }
            guard mkdir(path, 0o755) == 0 else { throw StoreError.io(path: path, operation: "create", errno: errno) }
            // Names are bytes: written in their exported form, which `verify --manifest` decodes.
            for e in tree.entries { try writeContent(e.id, kind: e.kind, to: path + "/" + ExportedName.encode(e.name)) }
        case .chunk:
            throw StoreError.corrupt("a contribution names a chunk")
        }
    }

    /// A file name from a sidecar's: no slashes, control characters (TextRules, as `verify
    /// --manifest` checks) or leading dots; at most 100 bytes.
    /// A contribution's name under `data/`: its intake index (8 digits), `-`, its file name made safe.
    static func exportedName(intake: UInt64, sidecar: Sidecar?, content: ObjectID) -> String {
        let number = String(intake)
        return String(repeating: "0", count: max(0, 8 - number.utf8.count)) + number + "-" + safeName(sidecar?.fileName ?? "", fallback: content.hex)
    }

    static func safeName(_ text: String, fallback: String) -> String {
        // Most names are short printable ASCII with no slash or leading dot: kept as they are.
        if let first = text.utf8.first, first != UInt8(ascii: "."), text.utf8.count <= 100,
           text.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7f && $0 != UInt8(ascii: "/") }) { return text }
        var out = String(text.unicodeScalars.map { $0 == "/" || TextRules.isControl($0) ? "_" : Character($0) })
        while out.hasPrefix(".") { out.removeFirst() }
        while out.utf8.count > 100 { out.removeLast() }
        return out.isEmpty ? fallback : out
    }

    /// Text from records made into one Markdown table cell or heading: control characters
    /// (newlines included) become spaces, `|` is escaped, so no field can break the table.
    static func markdownCell(_ text: String) -> String {
        String(String.UnicodeScalarView(text.unicodeScalars.map { TextRules.isControl($0) ? " " : $0 }))
            .replacingOccurrences(of: "|", with: "\\|")
    }

    /// The DATASET.md card: what a model trainer needs to know and check.
    static func card(_ x: DatasetExport) -> String {
        let cp = (try? Checkpoint.unverified(note: x.checkpoint))
        var licenses = [String: Int](), authors = [String: (Int, UInt64)]()
        for e in x.entries {
            licenses[e.license, default: 0] += 1
            authors[e.author, default: (0, 0)].0 += 1
            authors[e.author, default: (0, 0)].1 = authors[e.author, default: (0, 0)].1.saturatingAdding(e.size)
        }
        var s = "# \(markdownCell(x.name))\n\nAccepted contributions of the Datanet `\(x.datanet.hex)` at its checkpoint of size \(cp?.size ?? 0)"
        s += " (root `\(cp?.root.hex ?? "?")`, signed note in `CHECKPOINT`).\n\n"
        s += "- contributions: \(x.entries.count)\n- bytes: \(x.totalBytes)\n\n## Licenses\n\n| license | contributions |\n|---|---|\n"
        for (l, n) in licenses.sorted(by: { $0.key < $1.key }) { s += "| \(l.isEmpty ? "(none given)" : markdownCell(l)) | \(n) |\n" }
        s += "\n## Contributors\n\n| author key | contributions | bytes |\n|---|---|---|\n"
        for (a, v) in authors.sorted(by: { $0.key < $1.key }) { s += "| `\(a)` | \(v.0) | \(v.1) |\n" }
        s += "\n## Checking it\n\n`MANIFEST.jsonl` lists every file with its content id, contribution id, author, license and intake index.\n"
        s += "`datanet verify --manifest DIR` recomputes every content id and, in a store that holds this Datanet's log, checks that\n"
        s += "each contribution was accepted at this checkpoint and not withdrawn since; elsewhere it fails unless given\n"
        s += "`--content-only`. Names inside folders that are not UTF-8, or hold `%`, are written with `%XX` escapes (schema/objects.md).\n"
        s += "`datanet receipt ID` gives a contribution's full provenance.\n"
        return s
    }
}

/// SHA-256 of a file's bytes, read in 1 MiB pieces.
func fileSHA256(_ path: String) throws -> Digest {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw StoreError.io(path: path, operation: "read", errno: errno) }
    defer { close(fd) }
    var hasher = SHA256.Hasher()
    var buffer = [UInt8](repeating: 0, count: 1 << 20)
    while true {
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 { if errno == EINTR { continue }; throw StoreError.io(path: path, operation: "read", errno: errno) }
        if n == 0 { break }
        buffer.withUnsafeBytes { hasher.update(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
    }
    return hasher.finalize()
}
