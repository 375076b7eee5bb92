import DatanetCrypto
import DatanetLedger
import DatanetStore
import Foundation
import Glibc

func runReceipt(_ p: Parsed) throws -> Int32 {
    let ledger = try openLedger()
    let receipt: Receipt
    if let file = p.options["--refresh"] {
        guard p.positionals.isEmpty else { throw CLIError.usage("give either an ID or --refresh FILE") }
        receipt = try ledger.refreshed(try Receipt(json: try readInput(file)))
    } else {
        guard let id = p.positionals.first else { throw CLIError.usage("receipt needs a contribution ID or --refresh FILE") }
        receipt = try ledger.receipt(for: try resolveRecord(ledger, id))
    }
    try writeOutput(try receipt.json, to: p.options["-o"] ?? p.options["--refresh"])
    return 0
}

func runPin(_ p: Parsed) throws -> Int32 {
    let ledger = try openLedger()
    guard let text = p.positionals.first else {
        let pins = try ledger.pinned()
        if p.has("--json") { try printJSON(pins.map(\.hex)) } else { pins.forEach { out($0.hex) } }
        return 0
    }
    let d = try anchorID(ledger, text)
    if p.has("--remove") {
        guard try ledger.unpin(d) else { throw CLIError.failure("\(d.hex) was not pinned") }
        out("unpinned \(d.hex)")
    } else {
        try ledger.pin(d)
        out("pinned \(d.hex): `datanet verify` now anchors receipts of this Datanet")
    }
    return 0
}

/// A Datanet id: 64 hex digits (it need not be held here), or a Datanet this store follows.
func anchorID(_ ledger: Ledger?, _ text: String) throws -> Digest {
    if let d = Digest(hex: text) { return d }
    guard let ledger else { throw CLIError.usage("--datanet needs the full 64-hex-digit Datanet id here (no store to resolve '\(text)')") }
    return try ledger.resolveDatanet(text).id
}

func runVerify(_ p: Parsed) throws -> Int32 {
    // Verifying never writes: a store that never held a ledger has no pins and no logs.
    let ledger = access(storeDir + "/data.mdb", F_OK) == 0 ? try? Ledger(store: try openStore(), create: false) : nil
    if let dir = p.options["--manifest"] {
        guard p.positionals.isEmpty else { throw CLIError.usage("give either FILE|ID or --manifest DIR") }
        let checks = try DatasetExport.verify(dir: dir, ledger: ledger)
        return try report(p, checks, kind: "manifest", subject: dir)
    }
    guard let target = p.positionals.first else { throw CLIError.usage("verify needs a FILE, an ID or --manifest DIR") }
    let receipt: Receipt
    if access(target, F_OK) == 0 || !target.utf8.allSatisfy({ Hex.nibble($0) != nil }) {
        let data = try readInput(target)
        guard isReceipt(data) else { return try verifyChunkProof(p, data, path: target) }
        receipt = try Receipt(json: data)
    } else {
        guard let ledger else { throw CLIError.failure("\(target): no such file, and no ledger at \(storeDir) to find a record in") }
        receipt = try ledger.receipt(for: try resolveRecord(ledger, target))
    }
    let anchor = try p.options["--datanet"].map { try anchorID(ledger, $0) }
    let result = try ledger.map { try $0.verify(receipt, anchor: anchor) } ?? receipt.verify(anchor: anchor)
    let holds = result.holds || (p.has("--self-contained") && result.holdsSelfContained)
    if p.has("--json") {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        struct Report: Encodable { let valid: Bool; let kind = "receipt"; let contribution: String; let verification: ReceiptVerification }
        writeFD(1, try e.encode(Report(valid: holds, contribution: receipt.contribution, verification: result)) + Data("\n".utf8))
    } else {
        out(result.anchored ? "anchored at \(result.anchor!)" : "NOT ANCHORED")
        func show(_ c: VerificationCheck, _ depth: Int) {
            out(String(repeating: "  ", count: depth) + "\(mark(c.status)) \(c.name)" + (c.detail.isEmpty ? "" : ": \(c.detail)"))
            c.children.forEach { show($0, depth + 1) }
        }
        result.checks.forEach { show($0, 0) }
        out(holds ? "receipt holds" + (result.anchored ? "" : " (self-contained only: NOT ANCHORED)")
                  : "receipt does NOT hold")
    }
    return holds ? 0 : 1
}

private func isReceipt(_ data: Data) -> Bool {
    (try? JSONSerialization.jsonObject(with: data) as? [String: Any])?["type"] as? String == Receipt.typeName
}

private func verifyChunkProof(_ p: Parsed, _ data: Data, path: String) throws -> Int32 {
    let proof: ChunkProof
    do {
        proof = try JSONDecoder().decode(ChunkProof.self, from: data)
    } catch {
        throw CLIError.failure("\(path) is neither a receipt nor a chunk proof: \(describeDecoding(error))")
    }
    do {
        try proof.verify()
    } catch {
        if p.has("--json") { try printJSON(["valid": false, "kind": "chunk-proof", "reason": error.description]) }
        else { out("✗ chunk proof: \(error)") }
        return 1
    }
    if p.has("--json") {
        try printJSON(["valid": true, "kind": "chunk-proof", "blob": proof.blob, "index": proof.index, "chunk": proof.chunk])
    } else {
        out("✓ chunk \(proof.index) (\(proof.chunk), \(proof.length) bytes at \(proof.offset)) is in blob \(proof.blob) under root \(proof.root)")
    }
    return 0
}

func runAudit(_ p: Parsed) throws -> Int32 {
    let ledger = try openLedger()
    let st = try ledger.resolveDatanet(p.positionals[0])
    let bar = ProgressBar(total: st.size, label: "audit", quiet: p.has("--quiet") || p.has("--json"))
    let report = try ledger.audit(st.id) { bar.update($0) }
    bar.finish()
    if p.has("--json") {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        writeFD(1, try e.encode(report) + Data("\n".utf8))
    } else {
        for v in report.violations {
            out("✗ " + (v.index.map { "leaf \($0): " } ?? "checkpoint: ") + "\(v.rule): \(v.detail)")
        }
        out("\(st.policy.name): \(report.leaves) leaves, \(report.signatures) signatures, \(report.checkpoints) checkpoints replayed from the genesis — "
            + (report.holds ? "every rule holds" : "\(report.violations.count) violation(s); --json gives portable evidence"))
    }
    return report.holds ? 0 : 1
}

func runBundle(_ p: Parsed) throws -> Int32 {
    let ledger = try openLedger()
    let summary: BundleSummary
    switch p.positionals[0] {
    case "export":
        guard let path = p.options["-o"] else { throw CLIError.usage("bundle export needs -o FILE") }
        let st = try ledger.resolveDatanet(p.positionals[1])
        let since = try integerOption(p, "--since") ?? 0
        let tmp = path + ".tmp-\(getpid())"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw StoreError.io(path: tmp, operation: "create", errno: errno) }
        do {
            summary = try ledger.exportBundle(st.id, since: UInt64(since), recordsOnly: p.has("--records-only"), to: fd)
            guard fsync(fd) == 0, close(fd) == 0, rename(tmp, path) == 0 else { throw StoreError.io(path: path, operation: "write", errno: errno) }
        } catch {
            close(fd)
            unlink(tmp)
            throw error
        }
    case "import":
        let fd = open(p.positionals[1], O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw StoreError.io(path: p.positionals[1], operation: "read", errno: errno) }
        defer { close(fd) }
        summary = try ledger.importBundle(from: fd)
    default:
        throw CLIError.usage("bundle takes export or import, not '\(p.positionals[0])'")
    }
    if p.has("--json") {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        writeFD(1, try e.encode(summary) + Data("\n".utf8))
    } else {
        out("\(p.positionals[0] == "export" ? "exported" : "imported") \(summary.datanet.prefix(16))…: leaves \(summary.from)..<\(summary.to), "
            + "\(summary.checkpoints) checkpoint(s), \(summary.records) pending record(s), \(summary.objects) object(s), "
            + "\(summary.sidecars) sidecar(s), \(humanBytes(summary.bytes))")
    }
    return 0
}

/// Prints a list of checks (or JSON) and returns 0 when all hold.
private func report(_ p: Parsed, _ checks: [VerificationCheck], kind: String, subject: String) throws -> Int32 {
    let holds = checks.allSatisfy(\.holds)
    if p.has("--json") {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        struct Report: Encodable { let valid: Bool; let kind: String; let subject: String; let checks: [VerificationCheck] }
        writeFD(1, try e.encode(Report(valid: holds, kind: kind, subject: subject, checks: checks)) + Data("\n".utf8))
    } else {
        for c in checks { out("\(mark(c.status)) \(c.name)" + (c.detail.isEmpty ? "" : ": \(c.detail)")) }
        out(holds ? "\(kind) holds" : "\(kind) does NOT hold")
    }
    return holds ? 0 : 1
}

private func mark(_ s: VerificationCheck.Status) -> String {
    switch s { case .pass: "✓"; case .fail: "✗"; case .notApplicable: "–" }
}

func runExport(_ p: Parsed) throws -> Int32 {
    let ledger = try openLedger()
    let spec = p.positionals[0]
    let (name, size): (String, UInt64?) = if let at = spec.lastIndex(of: "@") {
        (String(spec[..<at]), UInt64(spec[spec.index(after: at)...]))
    } else { (spec, nil) }
    if spec.contains("@") && size == nil { throw CLIError.usage("\(spec): the size after @ is not a number") }
    let st = try ledger.resolveDatanet(name)
    let bar = ProgressBar(total: st.size, label: "export", quiet: p.has("--quiet") || p.has("--json"))
    let x = try ledger.exportDataset(st.id, at: size, to: p.positionals[1]) { bar.update($0) }
    bar.finish()
    if p.has("--json") {
        try printJSON(["datanet": st.id.hex, "dir": p.positionals[1], "contributions": x.entries.count,
                       "bytes": x.entries.reduce(0) { $0 + $1.size }, "checkpoint": x.checkpoint])
    } else {
        out("exported \(x.entries.count) accepted contribution(s) of \(x.name) to \(p.positionals[1]) (MANIFEST.jsonl, DATASET.md, CHECKPOINT)")
    }
    return 0
}

func runTombstone(_ p: Parsed) throws -> Int32 {
    let ledger = try openLedger()
    let st = try ledger.resolveDatanet(p.positionals[0])
    let id = try resolveRecord(ledger, p.positionals[1])
    let takedown = p.command == "takedown"
    guard let reason = p.options["--reason"] ?? (takedown ? nil : "") else { throw CLIError.usage("takedown needs --reason TEXT") }
    let me = try signer()
    var e = Envelope(kind: .tombstone, body: Tombstone(datanet: st.id, contribution: id, takedown: takedown, reason: reason).body)
    try e.sign(with: me.signingKey)
    try ledger.propose(e)
    out("\(e.id.hex)  \(takedown ? "takedown" : "withdrawal") of \(id.hex.prefix(16))… pending; it takes effect when sequenced")
    return 0
}

func runGC(_ p: Parsed) throws -> Int32 {
    let r = try openLedger().collectGarbage(dryRun: p.has("--dry-run"))
    if p.has("--json") {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        writeFD(1, try e.encode(r) + Data("\n".utf8))
    } else {
        let s = r.sweep
        out("\(r.dryRun ? "would delete" : "deleted") \(s.chunks) chunk(s) (\(humanBytes(s.bytes))), \(s.blobs) blob(s), \(s.trees) tree(s), "
            + "\(s.roots) added root(s) under a tombstone; \(s.deadLeases) dead lease(s) cleared")
    }
    return 0
}
