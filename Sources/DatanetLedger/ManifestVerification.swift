import DatanetCrypto
import DatanetObjects
import DatanetRecords
import DatanetStore
import Foundation
import Glibc

/// What `datanet verify --manifest` concludes about an exported folder.
public struct ManifestVerification: Codable, Sendable {
    public var checks: [VerificationCheck]
    /// Acceptance was not checked (`--content-only`): the files match their listed ids, nothing more.
    public var contentOnly: Bool
    /// Every check holds.
    public var holds: Bool { checks.allSatisfy(\.holds) }
}

extension ManifestEntry {
    static let fields: Set<String> = ["path", "kind", "content", "contribution", "author", "license", "media_type", "size", "intake_index"]
    /// Fields a v2 manifest adds: `sha256` (files) or `files` (folders), and `label` with `metadata` where a sidecar was held.
    static let fieldsV2 = fields.union(["sha256", "files", "label", "metadata"])

    /// One MANIFEST.jsonl line, read strictly: valid JSON without repeated keys (StrictJSON),
    /// exactly the fields of its version (v1: no header line; v2: after one), each of its type.
    public init(line: Data, version: Int = 1) throws(RecordError) {
        try StrictJSON.check(line)
        do { self = try JSONDecoder().decode(ManifestEntry.self, from: line) } catch {
            throw .malformed("not a manifest entry: \(Receipt.describe(error))")
        }
        guard let keys = (try? JSONSerialization.jsonObject(with: line) as? [String: Any])?.keys else { throw .malformed("not a JSON object") }
        if let extra = Set(keys).subtracting(version == 1 ? Self.fields : Self.fieldsV2).sorted().first { throw .malformed("unknown manifest field \"\(extra)\"") }
        guard version == 2 else { return }
        guard (kind == "blob") == (sha256 != nil), (kind == "tree") == (files != nil) else {
            throw .malformed("a v2 entry has sha256 for a file (blob) and files for a folder (tree), not otherwise")
        }
        if let sha256, sha256.utf8.count != 64 || Hex.decode(sha256) == nil { throw .malformed("sha256 is not 64 hex digits") }
        if let files, files.contains(where: { $0.sha256.utf8.count != 64 || Hex.decode($0.sha256) == nil || $0.path.isEmpty }) {
            throw .malformed("a folder's file has no path or a sha256 that is not 64 hex digits")
        }
        guard (label == nil) == (metadata == nil) else { throw .malformed("label and metadata come together (a sidecar held) or not at all") }
    }
}

extension ManifestHeader {
    /// The header line of a v2 manifest, read strictly.
    init(line: Data) throws(RecordError) {
        try StrictJSON.check(line)
        guard let object = try? JSONSerialization.jsonObject(with: line) as? [String: Any],
              Set(object.keys) == ["format", "datanet", "size", "layout"],
              let header = try? JSONDecoder().decode(ManifestHeader.self, from: line) else {
            throw .malformed("the header is not {format, datanet, size, layout}")
        }
        guard header.format == ManifestHeader.format, DatanetID(hex: header.datanet) != nil, ExportLayout(rawValue: header.layout) != nil else {
            throw .malformed("the header names another format, a malformed Datanet id or an unknown layout")
        }
        self = header
    }
}

extension DatasetExport {
    /// Manifests larger than this are refused before parsing.
    public static let maximumManifest = 256 << 20

    /// Checks an exported folder (schema/log.md "Export"): MANIFEST.jsonl parses strictly,
    /// every listed path stays inside the folder and recomputes to its content id, no file under
    /// data/ is unlisted, and the contributions were accepted at CHECKPOINT in `ledger`'s copy
    /// of the log and not withdrawn since. When acceptance cannot be checked (no ledger, or it
    /// does not hold that checkpoint) this fails, unless `contentOnly` asks for the files alone.
    /// A withdrawn contribution fails unless `allowWithdrawn`.
    public static func verify(dir: String, ledger: Ledger?, contentOnly: Bool = false, allowWithdrawn: Bool = false) throws -> ManifestVerification {
        let manifest = try readRegularFile(dir + "/MANIFEST.jsonl", limit: maximumManifest)
        // A missing or unreadable CHECKPOINT is reported by the acceptance check, not thrown.
        let checkpoint = (try? readRegularFile(dir + "/CHECKPOINT", limit: 64 << 10)).map { String(decoding: $0, as: UTF8.self) }
        return verify(manifest: manifest, checkpoint: checkpoint, dir: dir, ledger: ledger, contentOnly: contentOnly, allowWithdrawn: allowWithdrawn)
    }

    /// Reads a file of an exported folder, which may be hostile: only a regular file (a FIFO
    /// would block, a link to /dev/zero never end), at most `limit` bytes.
    static func readRegularFile(_ path: String, limit: Int) throws -> Data {
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw StoreError.io(path: path, operation: "read", errno: errno) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG else { throw StoreError.unsupportedFile(path: path) }
        guard Int(st.st_size) <= limit else { throw RecordError.malformed("\(path) is over \(limit) bytes") }
        var out = [UInt8](repeating: 0, count: Int(st.st_size) + 1)
        var got = 0
        while got < out.count {
            let n = out.withUnsafeMutableBytes { read(fd, $0.baseAddress! + got, $0.count - got) }
            if n < 0 { if errno == EINTR { continue }; throw StoreError.io(path: path, operation: "read", errno: errno) }
            if n == 0 { break }
            got += n
        }
        // One byte more than the size was asked for: a file that grew is refused, not truncated.
        guard got <= Int(st.st_size) else { throw RecordError.malformed("\(path) changed while it was read") }
        return Data(out[0..<got])
    }

    /// The same checks on a manifest and checkpoint already read (what the fuzzer drives).
    public static func verify(manifest: Data, checkpoint: String?, dir: String, ledger: Ledger?,
                              contentOnly: Bool = false, allowWithdrawn: Bool = false) -> ManifestVerification {
        var result = ManifestVerification(checks: [], contentOnly: contentOnly)
        let (header, entries): (ManifestHeader?, [ManifestEntry])
        do { (header, entries) = try Self.parse(manifest: manifest) } catch {
            result.checks = [VerificationCheck("MANIFEST.jsonl", .fail, "\(error)")]
            return result
        }
        if let header {
            // The header names the checkpoint CHECKPOINT holds.
            let cp = checkpoint.flatMap { try? Checkpoint.unverified(note: $0) }
            let ok = cp.map { $0.origin == "datanet/" + header.datanet && $0.size == header.size } ?? false
            result.checks.append(VerificationCheck("MANIFEST.jsonl header", ok ? .pass : .fail,
                                                   ok ? "v2, \(header.layout) layout, size \(header.size)" : "names Datanet \(header.datanet.prefix(16))… at size \(header.size), which CHECKPOINT does not hold"))
        }
        var listed = Set<[UInt8]>()
        for e in entries {
            // Split on the byte: a "/" followed by a combining mark is one Character.
            let parts = e.path.utf8.split(separator: 0x2f, omittingEmptySubsequences: false)
            guard parts.count == 2, parts[0].elementsEqual("data".utf8), !parts[1].isEmpty, parts[1].first != 0x2e,
                  !e.path.unicodeScalars.contains(where: TextRules.isControl) else {
                result.checks.append(VerificationCheck(e.path, .fail, "path is not data/<name>")); continue
            }
            guard listed.insert(Array(parts[1])).inserted else {
                result.checks.append(VerificationCheck(e.path, .fail, "listed twice")); continue
            }
            do {
                let (kind, id, size) = try ContentID.of(path: dir + "/" + e.path, exportedNames: true)
                let ok = id.hex == e.content && kind.description == e.kind && size == e.size
                if ok, let why = try sha256Mismatch(e, dir: dir) {
                    result.checks.append(VerificationCheck(e.path, .fail, why)); continue
                }
                result.checks.append(VerificationCheck(e.path, ok ? .pass : .fail, ok ? "\(e.kind) \(e.content.prefix(16))…"
                    : "content is \(kind) \(id.hex) of \(size) bytes, manifest says \(e.kind) \(e.content) of \(e.size)"))
            } catch {
                result.checks.append(VerificationCheck(e.path, .fail, "\(error)"))
            }
        }
        for name in unlisted(dir + "/data", listed: listed) {
            result.checks.append(VerificationCheck("data/" + ExportedName.encode(name), .fail, "not listed in MANIFEST.jsonl"))
        }
        if !contentOnly {
            result.checks.append(contentsOf: logChecks(checkpoint: checkpoint, entries: entries, v2: header != nil, ledger: ledger, allowWithdrawn: allowWithdrawn))
        }
        return result
    }

    /// The entries of a MANIFEST.jsonl, read strictly: one entry per line, each line ending in
    /// a newline, no empty lines.
    public static func entries(fromManifest manifest: Data) throws(RecordError) -> [ManifestEntry] { try parse(manifest: manifest).entries }

    /// A MANIFEST.jsonl read strictly: its v2 header (a first line with a `format`; v1 has none)
    /// and entries, one per line, each line ending in a newline, no empty lines.
    public static func parse(manifest: Data) throws(RecordError) -> (header: ManifestHeader?, entries: [ManifestEntry]) {
        guard manifest.isEmpty || manifest.last == UInt8(ascii: "\n") else { throw .malformed("the last line does not end with a newline") }
        var entries = [ManifestEntry]()
        var header: ManifestHeader?
        for (n, line) in manifest.dropLast().split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() where !manifest.isEmpty {
            do {
                // v2 begins with a header: the one line with a `format` key (entries have none).
                if n == 0, (try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any])?["format"] != nil {
                    header = try ManifestHeader(line: Data(line))
                } else {
                    entries.append(try ManifestEntry(line: Data(line), version: header == nil ? 1 : 2))
                }
            } catch {
                throw .malformed("line \(n + 1): \(error)")
            }
        }
        return (header, entries)
    }

    /// Why a v2 entry's SHA-256 claims do not hold (nil when they do, or for a v1 entry): a
    /// file's digest, or a folder's exact list of files with their sizes and digests.
    private static func sha256Mismatch(_ e: ManifestEntry, dir: String) throws -> String? {
        let path = dir + "/" + e.path
        if let sha = e.sha256 {
            let actual = try fileSHA256(path).hex
            return actual == sha ? nil : "SHA-256 is \(actual), manifest says \(sha)"
        }
        guard let files = e.files else { return nil }
        var onDisk = [String]()
        if let walker = FileManager.default.enumerator(atPath: path) {
            for case let p as String in walker where (try? FileManager.default.attributesOfItem(atPath: path + "/" + p)[.type] as? FileAttributeType) == .typeRegular {
                onDisk.append(p)
            }
        }
        guard onDisk.sorted() == files.map(\.path).sorted() else { return "the folder's files differ from the manifest's list of them" }
        for f in files {
            let actual = try fileSHA256(path + "/" + f.path).hex
            if actual != f.sha256 { return "\(f.path): SHA-256 is \(actual), manifest says \(f.sha256)" }
            let size = (try? FileManager.default.attributesOfItem(atPath: path + "/" + f.path)[.size] as? UInt64) ?? nil
            if size != f.size { return "\(f.path): \(size.map(String.init) ?? "?") bytes, manifest says \(f.size)" }
        }
        return nil
    }

    /// Names under data/ that the manifest does not list (as bytes: they need not be UTF-8).
    private static func unlisted(_ path: String, listed: Set<[UInt8]>) -> [[UInt8]] {
        guard let dir = opendir(path) else { return [] }
        defer { closedir(dir) }
        var out = [[UInt8]]()
        while let ent = readdir(dir) {
            let name = withUnsafeBytes(of: &ent.pointee.d_name) { Array($0.prefix(while: { $0 != 0 })) }
            if name != [0x2e] && name != [0x2e, 0x2e] && !listed.contains(name) { out.append(name) }
        }
        return out.sorted { $0.lexicographicallyPrecedes($1) }
    }

    private static func logChecks(checkpoint note: String?, entries: [ManifestEntry], v2: Bool, ledger: Ledger?, allowWithdrawn: Bool) -> [VerificationCheck] {
        let name = "accepted at the checkpoint"
        guard let note, let cp = try? Checkpoint.unverified(note: note), cp.origin.hasPrefix("datanet/"),
              let d = DatanetID(hex: String(cp.origin.dropFirst("datanet/".count))) else {
            return [VerificationCheck(name, .fail, "CHECKPOINT is missing or not a Datanet checkpoint")]
        }
        guard let ledger, let held = try? ledger.reader.accepted(d, at: cp.size) else {
            return [VerificationCheck(name, .fail, "cannot check acceptance: this store does not hold the log of \(d.hex) at size \(cp.size) "
                                      + "(import a bundle of it, or pass --content-only to check the files alone)")]
        }
        // CHECKPOINT must be signed by the key in force at its size and name the root this
        // store's log has there; lines a relay added (cosignatures) change neither.
        guard let key = try? ledger.sequencerKey(d, size: cp.size), (try? Checkpoint.verify(note: note, key: key)) != nil else {
            return [VerificationCheck(name, .fail, "CHECKPOINT is not signed by the sequencer key in force at size \(cp.size)")]
        }
        guard (try? Checkpoint.unverified(note: held.note)) == cp else {
            return [VerificationCheck(name, .fail, "this store's checkpoint of size \(cp.size) differs from CHECKPOINT")]
        }
        let listedRecords = held.items.map { ($0.id.hex, ($0.intake, $0.contribution)) }
            + held.withdrawn.map { ($0.id.hex, ($0.intake, $0.contribution)) }
        let accepted = Dictionary(listedRecords, uniquingKeysWith: { a, _ in a })
        let tombstones = Dictionary(held.withdrawn.map { ($0.id.hex, $0.tombstone) }, uniquingKeysWith: { a, _ in a })
        var withdrawn = [String]()
        for e in entries {
            // A withdrawn entry must still be listed exactly as accepted: --allow-withdrawn
            // relaxes the withdrawal, never the binding of the entry to its record.
            if let t = tombstones[e.contribution] {
                withdrawn.append("\(e.path) (contribution \(e.contribution.prefix(16))…, withdrawn at leaf \(t))")
            }
            guard let (index, c) = accepted[e.contribution], index == e.intakeIndex, c.content.hex == e.content,
                  c.author.description == e.author, c.license == e.license, c.mediaType == e.mediaType, c.size == e.size,
                  e.kind == (c.contentKind == .blob ? "blob" : "tree") else {
                return [VerificationCheck(name, .fail, "\(e.path): contribution \(e.contribution.prefix(16))… is not accepted as listed at size \(cp.size)")]
            }
            // v2 lists the label and metadata: those of the sidecar, where this store holds it (a
            // withdrawal erases it; a records-only replica never had it: then nothing to compare).
            if v2, let side = (try? ledger.reader.sidecar(of: c)) ?? nil {
                guard e.label == side.label, e.metadata == side.metadata else {
                    return [VerificationCheck(name, .fail, "\(e.path): label or metadata differ from contribution \(e.contribution.prefix(16))…'s sidecar held here")]
                }
            }
        }
        var checks = [VerificationCheck(name, .pass, "\(entries.count - withdrawn.count) contribution(s) accepted in this store's log at size \(cp.size)")]
        if !withdrawn.isEmpty {
            checks.append(VerificationCheck("not withdrawn", allowWithdrawn ? .pass : .fail,
                                            "\(withdrawn.count) withdrawn since: " + withdrawn.joined(separator: "; ")
                                            + (allowWithdrawn ? " (allowed by --allow-withdrawn)" : "; their content is erased (--allow-withdrawn accepts this)")))
        }
        return checks
    }
}
