import DatanetCrypto
import DatanetLedger
import DatanetObjects
import DatanetRecords
import Foundation

func runDiff(_ p: Parsed) throws -> Int32 {
    let ledger = try openLedgerForReading()
    let (st, a) = try datanetAt(ledger, p.positionals[0])
    let b: UInt64?
    if p.positionals.count > 1 {
        let (other, size) = try datanetAt(ledger, p.positionals[1])
        guard other.id == st.id else { throw CLIError.usage("diff compares two checkpoints of one Datanet: \(p.positionals[0]) and \(p.positionals[1]) are two") }
        b = size
    } else {
        b = nil
    }
    guard a != nil || b != nil else { throw CLIError.usage("diff needs a size: `datanet diff D@SIZE [D@SIZE]` (the second defaults to the newest checkpoint)") }
    let d = try ledger.diff(st.id, from: a, to: b, key: p.options["--key"])
    if p.has("--json") {
        func row(_ r: DatasetDiff.Row) -> [String: Any] {
            ["path": r.path, "line": r.line, "values": r.values, "key": r.key as Any? ?? NSNull()]
        }
        func file(_ f: DatasetDiff.FileChange) -> [String: Any] {
            ["path": f.file.path, "contribution": f.file.contribution.hex, "content": f.file.content.hex, "size": f.file.size,
             "lines": f.lines as Any? ?? NSNull(), "erased": f.erased]
        }
        try printJSON(["datanet": st.id.hex, "from": d.from, "to": d.to, "key": d.key as Any? ?? NSNull(),
                       "contributions": ["added": d.addedContributions.map(\.hex), "withdrawn": d.removedContributions.map(\.hex)],
                       "files": ["added": d.added.map(file), "removed": d.removed.map(file)],
                       "tables": d.tables.map { t in
                           ["name": t.name, "header": t.header as Any? ?? NSNull(), "added": t.added.map(row), "removed": t.removed.map(row),
                            "changed": t.changed.map { ["before": row($0.before), "after": row($0.after)] }] as [String: Any]
                       },
                       "problems": d.problems])
        return 0
    }
    let verbose = p.has("-v")
    out("\(terminalSafe(st.policy.name)): checkpoint \(d.from) → \(d.to): \(d.addedContributions.count) contribution(s) accepted, \(d.removedContributions.count) withdrawn")
    func lines(_ f: DatasetDiff.FileChange) -> String {
        f.erased ? "content erased" : f.lines.map { "\($0) line\($0 == 1 ? "" : "s")" } ?? humanBytes(f.file.size)
    }
    for f in d.added { out("  + \(terminalSafe(f.file.path))  (\(lines(f)))") }
    for f in d.removed { out("  - \(terminalSafe(f.file.path))  (\(lines(f)))") }
    let shown = verbose ? Int.max : 10
    func values(_ r: DatasetDiff.Row) -> String { terminalSafe(r.values.joined(separator: ",")) }
    for t in d.tables {
        out("table \(terminalSafe(t.name)): +\(t.added.count) row(s), -\(t.removed.count) row(s)" + (d.key.map { ", ~\(t.changed.count) changed (by \(terminalSafe($0)))" } ?? ""))
        for r in t.added.prefix(shown) { out("  + \(values(r))") }
        for r in t.removed.prefix(shown) { out("  - \(values(r))") }
        for c in t.changed.prefix(shown) { out("  ~ \(terminalSafe(c.before.key ?? "")): \(values(c.before)) → \(values(c.after))") }
        if !verbose && (t.added.count > shown || t.removed.count > shown || t.changed.count > shown) { out("  … (-v lists every row, --json gives them all)") }
    }
    for problem in d.problems { out("! \(terminalSafe(problem))") }
    return 0
}
