import DatanetCrypto
import DatanetObjects
import DatanetLedger
import DatanetRecords
import DatanetStore
import Foundation
import Glibc

func runStat(_ p: Parsed) throws -> Int32 {
    let store = try openStore()
    let asJSON = p.has("--json")
    guard let text = p.positionals.first else {
        let s = try store.stats()
        // What Datanets hold besides what was added here: their contributions' content.
        let named = (try? ledgerIfAny(store)?.reader.contributionContents()) ?? nil
        let datanetBytes = named?.values.reduce(UInt64(0)) { $0.saturatingAdding($1) } ?? 0
        if asJSON {
            try printJSON(["chunks": s.chunks, "blobs": s.blobs, "trees": s.trees, "added": s.added,
                           "logical_bytes": s.logicalBytes, "unique_bytes": s.uniqueBytes,
                           "disk_bytes": s.diskBytes, "dedup_ratio": (s.dedupRatio * 1000).rounded() / 1000,
                           "contribution_contents": named?.count ?? 0, "contribution_bytes": datanetBytes])
        } else {
            out("objects:       \(s.added) added; \(s.blobs) blobs, \(s.trees) trees, \(s.chunks) chunks")
            if let named { out("contributions: \(named.count) distinct contents named by Datanet records (\(humanBytes(datanetBytes)))") }
            out("added bytes:   \(s.logicalBytes) (\(humanBytes(s.logicalBytes)))")
            out("unique bytes:  \(s.uniqueBytes) (\(humanBytes(s.uniqueBytes)))")
            out("store on disk: \(s.diskBytes) (\(humanBytes(s.diskBytes)))")
            out(String(format: "dedup ratio:   %.3f", s.dedupRatio))
        }
        return 0
    }
    let target = try resolveContent(ledgerIfAny(store), store, text)
    let (kind, id) = (target.kind, target.id)
    switch kind {
    case .blob:
        guard let m = try store.blob(id) else { throw StoreError.notFound(id: text) }
        if asJSON {
            try printJSON(["id": id.hex, "kind": "blob", "size": m.size, "root": m.root.hex,
                           "chunks": m.chunks.map { ["id": $0.id.hex, "offset": $0.offset, "length": $0.length] as [String: Any] }])
        } else {
            out("blob   \(id.hex)\nsize   \(m.size)\nroot   \(m.root.hex)\nchunks \(m.chunks.count)")
            for (i, c) in m.chunks.enumerated() {
                out("  \(String(i).leftPad(6))  \(String(c.offset).leftPad(12))  \(String(c.length).leftPad(7))  \(c.id.hex)")
            }
        }
    case .tree:
        guard let t = try store.tree(id) else { throw StoreError.notFound(id: text) }
        // Names are bytes and may come from another store: the exported form (%XX for what is not
        // UTF-8), then escaped for the terminal.
        let name = { (e: TreeEntry) in terminalSafe(ExportedName.encode(e.name)) }
        if asJSON {
            try printJSON(["id": id.hex, "kind": "tree", "size": t.size,
                           "entries": t.entries.map { ["name": name($0), "kind": $0.kind.description, "id": $0.id.hex, "size": $0.size] as [String: Any] }])
        } else {
            out("tree   \(id.hex)\nsize   \(t.size)\nentries \(t.entries.count)")
            for e in t.entries { out("  \(e.kind)  \(e.id.hex)  \(String(e.size).leftPad(12))  \(name(e))") }
        }
    case .chunk:
        let bytes = try store.chunk(id) ?? []
        if asJSON { try printJSON(["id": id.hex, "kind": "chunk", "size": bytes.count]) } else { out("chunk  \(id.hex)\nsize   \(bytes.count)") }
    }
    return 0
}

func runProve(_ p: Parsed) throws -> Int32 {
    guard let index = try integerOption(p, "--chunk") else { throw CLIError.usage("prove needs --chunk N") }
    let store = try openStore()
    let (kind, id) = try store.resolve(p.positionals[0])
    guard kind == .blob, let m = try store.blob(id) else { throw CLIError.failure("\(id) is a \(kind), not a file (blob)") }
    guard index < m.chunks.count else {
        throw CLIError.failure("blob \(id) has \(m.chunks.count) chunk(s); --chunk \(index) is out of range")
    }
    let proof = ChunkProof(blobID: id, manifest: m, index: index)
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    let data = try encoder.encode(proof) + Data("\n".utf8)
    if let path = p.options["-o"] {
        guard FileManager.default.createFile(atPath: path, contents: data) else {
            throw StoreError.io(path: path, operation: "write", errno: errno)
        }
    } else {
        writeFD(1, data)
    }
    return 0
}

func runFsck(_ p: Parsed) throws -> Int32 {
    let store = try openStore()
    let total = UInt64(max(0, try store.stats().uniqueBytes))
    let quiet = p.has("--quiet") || p.has("--json")
    let bar = ProgressBar(total: total, label: "fsck", quiet: quiet)
    var r = try store.fsck { bar.update($0) }
    bar.finish()
    // The ledger pass: every Datanet's index rebuilt from its leaves and compared.
    var logs = [LogTableCheck]()
    do {
        let ledger = try Ledger(store: store, create: false)
        // Content that contributions name is referenced, though nothing `add`ed it (a bundle brought it).
        let named = try ledger.reader.contributionContents()
        r.unreferenced.removeAll { named[$0.1] != nil }
        let leaves = try ledger.reader.datanets().reduce(UInt64(0)) { $0 + $1.size }
        let logBar = ProgressBar(total: leaves, label: "fsck logs", quiet: quiet)
        logs = try ledger.checkLogTables { logBar.update($0) }
        logBar.finish()
    } catch LedgerStateError.noLedger {}
    let logProblems = logs.flatMap { c in c.problems.map { "Datanet \(c.datanet.hex.prefix(16))…: \($0)" } }
    let problems = r.problems + logProblems
    if p.has("--json") {
        try printJSON(["ok": problems.isEmpty, "problems": problems, "chunks": r.chunks, "blobs": r.blobs,
                       "trees": r.trees, "added": r.roots, "bytes_checked": r.bytesChecked,
                       "unreferenced": r.unreferenced.map { ["kind": $0.0.description, "id": $0.1.hex] },
                       "stale_leases": r.staleLeases, "live_leases": r.liveLeases,
                       "logs": logs.map { ["datanet": $0.datanet.hex, "leaves": $0.leaves, "problems": $0.problems] as [String: Any] }])
    } else {
        for problem in problems { out("✗ \(problem)") }
        out("checked \(r.chunks) chunks (\(humanBytes(r.bytesChecked))), \(r.blobs) blobs, \(r.trees) trees, \(r.roots) added objects")
        if !logs.isEmpty { out("checked \(logs.count) Datanet log(s), \(logs.reduce(0) { $0 + $1.leaves }) leaves, against their indexes") }
        if !r.unreferenced.isEmpty { out("\(r.unreferenced.count) unreferenced object(s) (left by an interrupted add; not damage)") }
        if r.staleLeases > 0 { out("\(r.staleLeases) stale lease(s) from adds that did not finish") }
        out(problems.isEmpty ? "store is sound" : "\(problems.count) problem(s) found")
    }
    return problems.isEmpty ? 0 : 1
}

func runCompact(_ p: Parsed) throws -> Int32 {
    let store = try openStore()
    let (before, after) = try store.compact()
    if p.has("--json") { try printJSON(["before_bytes": before, "after_bytes": after]) }
    else { out("compacted \(storeDir): \(humanBytes(before)) -> \(humanBytes(after))") }
    return 0
}
