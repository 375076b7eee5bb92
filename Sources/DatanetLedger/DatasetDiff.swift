import DatanetCrypto
import DatanetObjects
import DatanetRecords
import DatanetStore
import Foundation

/// What changed in a Datanet's accepted content between two checkpoints (`datanet diff`):
/// contributions accepted since and withdrawn since, their files, and for tables (CSV with a
/// header, JSON Lines of objects) the rows added, removed and — by a key column — changed.
public struct DatasetDiff: Sendable {
    /// A file of a contribution accepted or withdrawn between the two checkpoints.
    public struct FileChange: Sendable {
        public let file: AcceptedFile
        /// Lines of text (nil for content that is not UTF-8, or not held here any more).
        public let lines: Int?
        /// The content is no longer held (a withdrawal erased it): rows cannot be compared.
        public let erased: Bool
    }

    /// One row of a table: where it is and its values (CSV: in header order; JSON Lines: the
    /// line re-encoded with sorted keys).
    public struct Row: Sendable {
        public let path: String, line: Int
        public let values: [String]
        public let key: String?
    }

    /// The rows of one table that differ: CSV files sharing a header form one table; every
    /// JSON Lines file is part of the one JSON Lines table.
    public struct TableChange: Sendable {
        public let name: String
        public let header: [String]?
        public internal(set) var added = [Row](), removed = [Row]()
        public internal(set) var changed = [(before: Row, after: Row)]()
    }

    public let from: UInt64, to: UInt64
    /// The key column rows were matched by, if any.
    public let key: String?
    public internal(set) var added = [FileChange](), removed = [FileChange]()
    public internal(set) var tables = [TableChange]()
    /// Files whose rows could not be read: "path: line N: why".
    public internal(set) var problems = [String]()

    public var addedContributions: [RecordID] { unique(added.map(\.file.contribution)) }
    public var removedContributions: [RecordID] { unique(removed.map(\.file.contribution)) }
    private func unique(_ ids: [RecordID]) -> [RecordID] {
        var seen = Set<RecordID>()
        return ids.filter { seen.insert($0).inserted }
    }

    /// Files larger than this are counted, not read row by row.
    public static let maximumFileBytes: UInt64 = 256 << 20
}

extension Ledger {
    /// The difference between the checkpoints of size `a` and `b` of `d` (nil: the newest).
    /// A contribution counts as live at a size when it was accepted by then and no tombstone
    /// below that size names it; `key` matches table rows across the two (changed rows).
    public func diff(_ d: DatanetID, from a: UInt64?, to b: UInt64?, key: String?) throws -> DatasetDiff {
        let (from, to, accepted, withdrawn) = try changes(d, from: a, to: b)
        var diff = DatasetDiff(from: from, to: to, key: key)
        var tables = [String: DatasetDiff.TableChange]()
        var order = [String]()
        for (side, items) in [(false, withdrawn), (true, accepted)] {
            for item in items {
                for f in try files(of: item.contribution, id: item.id, intake: item.intake, sidecar: try reader.sidecar(of: item.contribution)) {
                    let bytes = f.size <= DatasetDiff.maximumFileBytes ? try store.blobBytes(f.content, limit: DatasetDiff.maximumFileBytes) : nil
                    let text = bytes.flatMap { String(validating: $0, as: UTF8.self) }
                    let change = DatasetDiff.FileChange(file: f, lines: text.map(Self.lineCount), erased: bytes == nil && f.size <= DatasetDiff.maximumFileBytes)
                    if side { diff.added.append(change) } else { diff.removed.append(change) }
                    guard let bytes else { continue }
                    do {
                        // A file of a folder is known by its name; a lone file, whose sidecar (and so its
                        // name) a withdrawal erases, also by the media type its record names.
                        let media = f.content == item.contribution.content ? item.contribution.mediaType : nil
                        for (name, header, rows) in try Self.tableRows(f.path, bytes, mediaType: media, key: key) {
                            if tables[name] == nil { tables[name] = .init(name: name, header: header); order.append(name) }
                            if side { tables[name]!.added += rows } else { tables[name]!.removed += rows }
                        }
                    } catch {
                        diff.problems.append("\(f.path): \(error)")
                    }
                }
            }
        }
        diff.tables = order.map { Self.matchByKey(tables[$0]!, keyed: key != nil) }.filter { !$0.added.isEmpty || !$0.removed.isEmpty || !$0.changed.isEmpty }
        return diff
    }

    /// What changed between the checkpoints of size `a` and `b` (nil: the newest), read from
    /// the leaves between them only, so a diff costs what changed, not the log's length: the
    /// contributions accepted there and not withdrawn before `b`, and those accepted before
    /// `a` and withdrawn there. When `a` is the later checkpoint the two lists trade places.
    private func changes(_ d: DatanetID, from a: UInt64?, to b: UInt64?) throws
        -> (from: UInt64, to: UInt64, accepted: [(id: RecordID, intake: UInt64, contribution: Contribution)], withdrawn: [(id: RecordID, intake: UInt64, contribution: Contribution)]) {
        let table = try leafTable(d)
        return try env.read { txn in
            func size(_ s: UInt64?) throws -> UInt64 {
                if let s {
                    guard try txn.contains(checkpoints, BigEndian.key(d, s)) else { throw LedgerStateError.noCheckpoint(datanet: d.hex, size: s) }
                    return s
                }
                guard let note = try latestCheckpointNote(txn, d) else { throw LedgerStateError.noCheckpoint(datanet: d.hex, size: nil) }
                return try Checkpoint.unverified(note: note).size
            }
            let (x, y) = (try size(a), try size(b))
            let (lo, hi) = (min(x, y), max(x, y))
            var acceptedThere = [RecordID: UInt64](), order = [RecordID]()
            var tombstoned = [(RecordID, UInt64)]()
            try table.scan(txn, from: lo) { i, v in
                guard i < hi else { return false }
                let leaf = try table.decode(i, Array(v))
                if let dec = leaf.decision, dec.accepted { acceptedThere[dec.contribution] = dec.intake; order.append(dec.contribution) }
                if let t = leaf.tombstone { tombstoned.append((t.contribution, t.intake)) }
                return true
            }
            func contribution(_ id: RecordID, _ intake: UInt64) throws -> (id: RecordID, intake: UInt64, contribution: Contribution)? {
                guard let i = try table.leaf(txn, intake)?.intake, i.record == id else { return nil }
                return (id, intake, try Contribution(body: i.contribution.body))
            }
            var withdrawn = [(id: RecordID, intake: UInt64, contribution: Contribution)]()
            for (id, intake) in tombstoned {
                if acceptedThere.removeValue(forKey: id) != nil { continue } // accepted and withdrawn in between: in neither
                guard let at = try decision(txn, id), at < lo, try table.leaf(txn, at)?.decision?.accepted == true else { continue }
                if let c = try contribution(id, intake) { withdrawn.append(c) }
            }
            let accepted = try order.compactMap { id in try acceptedThere[id].flatMap { try contribution(id, $0) } }.sorted { $0.intake < $1.intake }
            withdrawn.sort { $0.intake < $1.intake }
            return x <= y ? (x, y, accepted, withdrawn) : (x, y, withdrawn, accepted)
        }
    }

    static func lineCount(_ text: String) -> Int {
        var n = 0
        for b in text.utf8 where b == 0x0a { n += 1 }
        return n + (text.isEmpty || text.utf8.last == 0x0a ? 0 : 1)
    }

    /// The table rows a file holds, if it is a table: `.csv` or text/csv (RFC 4180, header
    /// first), `.jsonl`/`.ndjson` or application/x-ndjson (one JSON object per non-empty line).
    static func tableRows(_ path: String, _ bytes: [UInt8], mediaType: String?, key: String?) throws -> [(String, [String]?, [DatasetDiff.Row])] {
        let lower = path.lowercased()
        if lower.hasSuffix(".csv") || mediaType == "text/csv" {
            let table = try CSVTable(bytes)
            let k = key.flatMap { table.header.firstIndex(of: $0) }
            if let key, k == nil { throw RecordError.malformed("no column '\(key)' in its header") }
            let rows = table.rows.map { r in DatasetDiff.Row(path: path, line: r.line, values: r.fields, key: k.map { r.fields[$0] }) }
            return [("CSV [" + table.header.joined(separator: ",") + "]", table.header, rows)]
        }
        guard lower.hasSuffix(".jsonl") || lower.hasSuffix(".ndjson") || mediaType == "application/x-ndjson" else { return [] }
        var rows = [DatasetDiff.Row]()
        for (n, line) in bytes.split(separator: 0x0a, omittingEmptySubsequences: false).enumerated() where !line.allSatisfy({ $0 == 0x20 || $0 == 0x0d }) {
            let data = Data(line)
            do { try StrictJSON.check(data) } catch { throw RecordError.malformed("line \(n + 1): \(error)") }
            guard let object = try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]) as? [String: Any] else {
                throw RecordError.malformed("line \(n + 1): not a JSON object")
            }
            let canonical = String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]), as: UTF8.self)
            let k = key.flatMap { object[$0] }.map { v in
                (try? JSONSerialization.data(withJSONObject: v, options: [.fragmentsAllowed, .sortedKeys])).map { String(decoding: $0, as: UTF8.self) } ?? "\(v)"
            }
            rows.append(.init(path: path, line: n + 1, values: [canonical], key: k))
        }
        return [("JSON Lines", nil, rows)]
    }

    /// Rows with the same values on both sides cancel out; with a key, a removed and an added
    /// row sharing it are one changed row.
    static func matchByKey(_ t: DatasetDiff.TableChange, keyed: Bool) -> DatasetDiff.TableChange {
        var out = DatasetDiff.TableChange(name: t.name, header: t.header)
        var pool = [[String]: Int]()
        for r in t.removed { pool[r.values, default: 0] += 1 }
        var added = [DatasetDiff.Row]()
        for r in t.added {
            if let n = pool[r.values], n > 0 { pool[r.values] = n - 1 } else { added.append(r) }
        }
        var removed = [DatasetDiff.Row]()
        for r in t.removed {
            if let n = pool[r.values], n > 0 { pool[r.values] = n - 1; removed.append(r) }
        }
        guard keyed else { (out.added, out.removed) = (added, removed); return out }
        var byKey = [String: [Int]]()
        for (i, r) in removed.enumerated() { if let k = r.key { byKey[k, default: []].append(i) } }
        var used = Set<Int>()
        for r in added {
            if let k = r.key, var list = byKey[k], let i = list.first {
                list.removeFirst()
                byKey[k] = list
                used.insert(i)
                out.changed.append((removed[i], r))
            } else {
                out.added.append(r)
            }
        }
        out.removed = removed.enumerated().filter { !used.contains($0.offset) }.map(\.element)
        return out
    }
}
