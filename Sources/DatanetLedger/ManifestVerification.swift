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

    /// One MANIFEST.jsonl line, read strictly: valid JSON without repeated keys (StrictJSON),
    /// exactly the manifest's fields, each of its type.
    public init(line: Data) throws(RecordError) {
        try StrictJSON.check(line)
        do { self = try JSONDecoder().decode(ManifestEntry.self, from: line) } catch {
            throw .malformed("not a manifest entry: \(Receipt.describe(error))")
        }
        guard let keys = (try? JSONSerialization.jsonObject(with: line) as? [String: Any])?.keys else { throw .malformed("not a JSON object") }
        if let extra = Set(keys).subtracting(Self.fields).sorted().first { throw .malformed("unknown manifest field \"\(extra)\"") }
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
        let entries: [ManifestEntry]
        do { entries = try Self.entries(fromManifest: manifest) } catch {
            result.checks = [VerificationCheck("MANIFEST.jsonl", .fail, "\(error)")]
            return result
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
            result.checks.append(contentsOf: logChecks(checkpoint: checkpoint, entries: entries, ledger: ledger, allowWithdrawn: allowWithdrawn))
        }
        return result
    }

    /// The entries of a MANIFEST.jsonl, read strictly: one entry per line, each line ending in
    /// a newline, no empty lines.
    public static func entries(fromManifest manifest: Data) throws(RecordError) -> [ManifestEntry] {
        guard manifest.isEmpty || manifest.last == UInt8(ascii: "\n") else { throw .malformed("the last line does not end with a newline") }
        var entries = [ManifestEntry]()
        for (n, line) in manifest.dropLast().split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() where !manifest.isEmpty {
            do { entries.append(try ManifestEntry(line: Data(line))) } catch {
                throw .malformed("line \(n + 1): \(error)")
            }
        }
        return entries
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

    private static func logChecks(checkpoint note: String?, entries: [ManifestEntry], ledger: Ledger?, allowWithdrawn: Bool) -> [VerificationCheck] {
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
        let listedRecords = held.items.map { ($0.envelope.id.hex, ($0.intake, $0.contribution)) }
            + held.withdrawn.map { ($0.envelope.id.hex, ($0.intake, $0.contribution)) }
        let accepted = Dictionary(listedRecords, uniquingKeysWith: { a, _ in a })
        let tombstones = Dictionary(held.withdrawn.map { ($0.envelope.id.hex, $0.tombstone) }, uniquingKeysWith: { a, _ in a })
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
