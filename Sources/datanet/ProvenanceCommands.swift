import DatanetCrypto
import DatanetLedger
import DatanetObjects
import DatanetRecords
import DatanetStore
import Foundation
import Glibc

func runReceipt(_ p: Parsed) throws -> Int32 {
    let ledger = try openLedgerForReading()
    let receipt: Receipt
    if let file = p.options["--refresh"] {
        guard p.positionals.isEmpty else { throw CLIError.usage("give either an ID or --refresh FILE") }
        receipt = try ledger.provenance.refreshed(try Receipt(json: try readInput(file)))
    } else {
        guard let id = p.positionals.first else { throw CLIError.usage("receipt needs a contribution ID or --refresh FILE") }
        receipt = try ledger.provenance.receipt(for: try resolveContribution(ledger, id).id)
    }
    try writeOutput(try receipt.json, to: p.options["-o"] ?? p.options["--refresh"])
    return 0
}

func runPin(_ p: Parsed) throws -> Int32 {
    let ledger = try openLedger()
    guard let text = p.positionals.first else {
        let pins = try ledger.provenance.pinned()
        if p.has("--json") { try printJSON(pins.map(\.hex)) } else { pins.forEach { out($0.hex) } }
        return 0
    }
    let d = try anchorID(ledger, text)
    if p.has("--remove") {
        guard try ledger.provenance.unpin(d) else { throw CLIError.failure("\(d.hex) was not pinned") }
        out("unpinned \(d.hex)")
    } else {
        let seen = try ledger.provenance.pin(d)
        out("pinned \(d.hex): `datanet verify` now anchors receipts of this Datanet"
            + (seen.map { "; remembering its checkpoint of size \($0.size), which later receipts must agree with" } ?? ""))
    }
    return 0
}

/// A Datanet id: 64 hex digits (it need not be held here), or a Datanet this store follows.
func anchorID(_ ledger: Ledger?, _ text: String) throws -> DatanetID {
    if let d = DatanetID(hex: text) { return d }
    guard let ledger else { throw CLIError.usage("--datanet needs the full 64-hex-digit Datanet id here (no store to resolve '\(text)')") }
    return try ledger.reader.resolveDatanet(text).id
}

func runVerify(_ p: Parsed) throws -> Int32 {
    // Verifying writes only what a pinned Datanet remembers (its newest checkpoint seen); a
    // store that never held a ledger has no pins and no logs, and is not created.
    let ledger = access(storeDir + "/data.mdb", F_OK) == 0 ? try? openLedgerForReading() : nil
    if let dir = p.options["--manifest"] {
        guard p.positionals.isEmpty else { throw CLIError.usage("give either FILE|ID or --manifest DIR") }
        let v = try DatasetExport.verify(dir: dir, ledger: ledger, contentOnly: p.has("--content-only"), allowWithdrawn: p.has("--allow-withdrawn"))
        return try report(p, v.checks, kind: "manifest", subject: dir, qualifier: v.contentOnly ? "CONTENT ONLY: acceptance not checked" : nil,
                          failuresOnly: !p.has("-v"))
    }
    if p.has("--content-only") { throw CLIError.usage("--content-only goes with --manifest DIR") }
    guard let target = p.positionals.first else { throw CLIError.usage("verify needs a FILE, an ID or --manifest DIR") }
    if access(target, F_OK) != 0, let ledger, let model = try findModel(ledger, target) {
        let checks = try ledger.verifyModel(model, allowWithdrawn: p.has("--allow-withdrawn")).checks
        return try report(p, checks, kind: "model", subject: model.id.hex)
    }
    let receipt: Receipt
    if access(target, F_OK) == 0 || !target.utf8.allSatisfy({ Hex.nibble($0) != nil }) {
        let data = try readInput(target)
        guard isReceipt(data) else { return try verifyChunkProof(p, data, path: target) }
        receipt = try Receipt(json: data)
    } else {
        guard let ledger else { throw CLIError.failure("\(target): no such file, and no ledger at \(storeDir) to find a record in") }
        receipt = try ledger.provenance.receipt(for: try resolveRecord(ledger, target))
    }
    let anchor = try p.options["--datanet"].map { try anchorID(ledger, $0) }
    let allow = p.has("--allow-withdrawn")
    let strict = p.has("--strict")
    if strict && ledger == nil { throw CLIError.failure("--strict needs this store to hold the receipt's log, and \(storeDir) holds no ledger") }
    let result = try ledger.map { try $0.provenance.verify(receipt, anchor: anchor, allowWithdrawn: allow, strict: strict) }
        ?? receipt.verify(anchor: anchor, allowWithdrawn: allow)
    let holds = result.holds || (p.has("--self-contained") && result.holdsSelfContained)
    // A pinned Datanet remembers the newest checkpoint a holding receipt showed (trust on first use).
    var remembered = false
    if let ledger, result.holds {
        do { remembered = try ledger.provenance.remember(receipt, verified: result) } catch {
            errLine("note: the checkpoint could not be remembered for the pin: \(error)")
        }
    }
    if p.has("--json") {
        struct Report: Encodable {
            let valid: Bool; let kind = "receipt"; let contribution: String; let takenOnTrust: [String]; let notChecked: [String]
            let remembered: Bool; let verification: ReceiptVerification
            enum CodingKeys: String, CodingKey {
                case valid, kind, contribution, takenOnTrust = "taken_on_trust", notChecked = "not_checked", remembered = "remembered_checkpoint", verification
            }
        }
        try printEncodable(Report(valid: holds, contribution: receipt.contribution, takenOnTrust: result.takenOnTrust,
                                  notChecked: result.notChecked, remembered: remembered, verification: result))
    } else {
        out(result.anchored ? "anchored at \(result.anchor!)" : "NOT ANCHORED")
        func show(_ c: VerificationCheck, _ depth: Int) {
            out(String(repeating: "  ", count: depth) + "\(mark(c.status)) \(c.name)" + (c.detail.isEmpty ? "" : ": \(c.detail)"))
            c.children.forEach { show($0, depth + 1) }
        }
        result.checks.forEach { show($0, 0) }
        let trust = result.takenOnTrust
        out(holds ? "receipt holds" + (result.anchored ? "" : " (self-contained only: NOT ANCHORED)")
                      + (trust.isEmpty ? "" : "; on the sequencer's word (~), which `datanet audit` or `verify --strict` checks: " + trust.joined(separator: ", "))
                      + (result.notChecked.isEmpty ? "" : "; not checked here (–): " + result.notChecked.joined(separator: ", "))
                  : "receipt does NOT hold")
        if remembered { out("remembered its checkpoint for the pin: later receipts of this Datanet must agree with it") }
    }
    return holds ? 0 : 1
}

private func isReceipt(_ data: Data) -> Bool {
    let type = (try? JSONSerialization.jsonObject(with: data) as? [String: Any])?["type"] as? String
    return type == Receipt.typeName || type == Receipt.legacyTypeName
}

private func verifyChunkProof(_ p: Parsed, _ data: Data, path: String) throws -> Int32 {
    let proof: ChunkProof
    do {
        proof = try JSONDecoder().decode(ChunkProof.self, from: data)
    } catch {
        throw CLIError.failure("\(path) is neither a receipt nor a chunk proof: \(Receipt.describe(error))")
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
    let ledger = try openLedgerForReading()
    let st = try ledger.reader.resolveDatanet(p.positionals[0])
    let bar = ProgressBar(total: st.size, label: "audit", quiet: p.has("--quiet") || p.has("--json"))
    let report = try ledger.audit(st.id) { bar.update($0) }
    bar.finish()
    if p.has("--json") {
        try printEncodable(report)
    } else {
        for v in report.violations {
            out("✗ " + (v.index.map { "leaf \($0): " } ?? "checkpoint: ") + "\(v.rule): \(v.detail)")
        }
        for f in report.forks {
            let size = f.notes.first.flatMap { try? Checkpoint.unverified(note: $0).size }
            out("✗ fork: \(f.notes.count) signed checkpoints" + (size.map { " of size \($0)" } ?? "") + " disagree (the evidence is kept here, and `bundle export` passes it on)")
        }
        out("\(terminalSafe(st.policy.name)): \(report.leaves) leaves, \(report.signatures) signatures, \(report.checkpoints) checkpoints replayed from the genesis — "
            + (report.holds ? "every rule holds"
               : "\(report.violations.count) violation(s)" + (report.forks.isEmpty ? "" : ", \(report.forks.count) fork(s)") + "; --json gives portable evidence"))
    }
    return report.holds ? 0 : 1
}

func runBundle(_ p: Parsed) throws -> Int32 {
    let ledger = p.positionals.first == "export" ? try openLedgerForReading() : try openLedger()
    let summary: BundleSummary
    switch p.positionals[0] {
    case "export":
        guard let path = p.options["-o"] else { throw CLIError.usage("bundle export needs -o FILE") }
        let st = try ledger.reader.resolveDatanet(p.positionals[1])
        let starts = ["--since", "--for", "--since-checkpoint"].filter { p.options[$0] != nil }
        guard starts.count <= 1 else { throw CLIError.usage("give one of \(starts.joined(separator: ", ")): each says where the bundle starts") }
        var since = UInt64(try integerOption(p, "--since") ?? 0)
        var recipients = try p.all("--seal-to").map { try sealRecipient($0, policy: st.policy) }
        if let file = p.options["--since-checkpoint"] {
            since = min(st.size, try ledger.agreedSize(ofNote: String(decoding: try readInput(file), as: UTF8.self), datanet: st.id))
        }
        if let name = p.options["--for"] {
            // What the contact last showed it holds; a private Datanet's bundle is sealed to them.
            guard let c = try contact(name) else { throw CLIError.usage("no contact named '\(name)' (`datanet id import` their public identity)") }
            let held = c.held?[st.id.hex]
            since = min(st.size, held ?? 0)
            if st.policy.readers != nil {
                let key = try sealRecipient(name, policy: st.policy)
                if !recipients.contains(key) { recipients.append(key) }
            }
            errLine(held.map { "\(name) holds \(st.policy.name) up to size \($0) (from the last bundle imported from them): exporting from leaf \(since)" }
                    ?? "no bundle from \(name) imported yet (`bundle import FILE --from \(name)`): exporting every leaf")
        }
        if st.policy.readers != nil && recipients.isEmpty {
            throw CLIError.failure("\(terminalSafe(st.policy.name)) is private: seal its bundle with --seal-to (readers, curators, owner or sequencer)")
        }
        summary = try writeBundle(to: path, sealedTo: recipients) { fd in
            try ledger.exportBundle(st.id, since: since, recordsOnly: p.has("--records-only"), to: fd)
        }
    case "import":
        var fd = open(p.positionals[1], O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw StoreError.io(path: p.positionals[1], operation: "read", errno: errno) }
        defer { close(fd) }
        if SealedBundle.isSealed(fd: fd) {
            // Opened into an unlinked file in the store's folder: no plaintext outlives the import.
            let plain = open(storeDir, oTmpFile | O_RDWR | O_CLOEXEC, 0o600)
            guard plain >= 0 else { throw StoreError.io(path: storeDir, operation: "create a temporary file in", errno: errno) }
            let ids = IdentityStore(storeDirectory: storeDir)
            let keys = ids.names().compactMap { try? ids.load($0).agreementKey }
            do { try SealedBundle.open(from: fd, to: plain, keys: keys) } catch { close(plain); throw error }
            close(fd)
            fd = plain
            guard lseek(fd, 0, SEEK_SET) == 0 else { throw StoreError.io(path: storeDir, operation: "read", errno: errno) }
        }
        let sender = try p.options["--from"].map { name -> String in
            guard try contact(name) != nil else { throw CLIError.usage("no contact named '\(name)' (`datanet id import` their public identity)") }
            return name
        }
        summary = try ledger.importBundle(from: fd)
        // The sender holds at least what it sent: the next `bundle export --for` them starts there.
        if let sender, let d = DatanetID(hex: summary.datanet) {
            try ContactBook(storeDirectory: storeDir).recordHeld(sender, datanet: d, size: summary.to)
        }
    default:
        throw CLIError.usage("bundle takes export or import, not '\(p.positionals[0])'")
    }
    if p.has("--json") {
        try printEncodable(summary)
    } else {
        out(bundleSummary(summary, export: p.positionals[0] == "export", name: (try? ledger.reader.resolveDatanet(summary.datanet))?.policy.name))
    }
    return 0
}

/// Prints a list of checks (or JSON) and returns 0 when all hold. `qualifier` limits what
/// "holds" means (printed beside it, and as `limited_to` in JSON).
/// With `failuresOnly`, checks that hold are counted in the last line instead of listed.
private func report(_ p: Parsed, _ checks: [VerificationCheck], kind: String, subject: String, qualifier: String? = nil,
                    failuresOnly: Bool = false) throws -> Int32 {
    let holds = checks.allSatisfy(\.holds)
    if p.has("--json") {
        struct Report: Encodable {
            let valid: Bool; let kind: String; let subject: String; let checks: [VerificationCheck]; let limitedTo: String?
            enum CodingKeys: String, CodingKey { case valid, kind, subject, checks, limitedTo = "limited_to" }
        }
        try printEncodable(Report(valid: holds, kind: kind, subject: subject, checks: checks, limitedTo: qualifier))
    } else {
        for c in checks where !failuresOnly || !c.holds || c.status == .statement {
            out("\(mark(c.status)) \(terminalSafe(c.name))" + (c.detail.isEmpty ? "" : ": \(terminalSafe(c.detail))"))
        }
        let tally = failuresOnly ? " — \(checks.filter { $0.status == .pass }.count) of \(checks.count) checks passed" + (holds ? "" : ", \(checks.filter { !$0.holds }.count) failed") + " (-v lists each)" : ""
        out((holds ? "\(kind) holds" : "\(kind) does NOT hold") + (qualifier.map { " (\($0))" } ?? "") + tally)
    }
    return holds ? 0 : 1
}

private func mark(_ s: VerificationCheck.Status) -> String {
    switch s { case .pass: "✓"; case .fail: "✗"; case .notApplicable: "–"; case .statement: "~" }
}

func runExport(_ p: Parsed) throws -> Int32 {
    let ledger = try openLedgerForReading()
    let (st, size) = try datanetAt(ledger, p.positionals[0])
    let dir = p.positionals[1]
    let layout = try p.options["--format"].map { f -> ExportLayout in
        guard let l = ExportLayout(rawValue: f) else { throw CLIError.usage("--format is files, croissant or hf, not '\(f)'") }
        return l
    }
    // Content this store lacks (a records-only sync) is fetched before anything is written.
    let accepted = try ledger.reader.accepted(st.id, at: size).items.map { ($0.id, $0.contribution) }
    _ = try fetchMissing(ledger, st.id, accepted, offline: p.has("--offline"), quiet: p.has("--quiet") || p.has("--json"))
    let bar = ProgressBar(total: st.size, label: "export", quiet: p.has("--quiet") || p.has("--json"))
    let x: DatasetExport
    var change = ""
    if p.has("--update") {
        let (fresh, old) = try ledger.updateExport(st.id, at: size, dir: dir, layout: layout) { bar.update($0) }
        let (was, now) = (Set(old.map(\.contribution)), Set(fresh.entries.map(\.contribution)))
        change = ": \(now.subtracting(was).count) contribution(s) added, \(was.subtracting(now).count) gone since the last export"
        x = fresh
    } else {
        x = try ledger.exportDataset(st.id, at: size, to: dir, layout: layout ?? .files) { bar.update($0) }
    }
    bar.finish()
    let extra = x.layout == .croissant ? ", croissant.json" : x.layout == .hf ? ", README.md (Hugging Face card)" : ""
    if p.has("--json") {
        try printJSON(["datanet": st.id.hex, "dir": dir, "contributions": x.entries.count, "layout": x.layout.rawValue,
                       "bytes": x.totalBytes, "checkpoint": x.checkpoint])
    } else {
        out("\(p.has("--update") ? "updated" : "exported") \(x.entries.count) accepted contribution(s) of \(terminalSafe(x.name)) in \(dir) (MANIFEST.jsonl, DATASET.md, CHECKPOINT\(extra))\(change)")
    }
    return 0
}

func runTombstone(_ p: Parsed) throws -> Int32 {
    let ledger = try openLedger()
    let st = try ledger.reader.resolveDatanet(p.positionals[0])
    let (id, note) = try resolveContribution(ledger, p.positionals[1])
    if let note { out(note) }
    let takedown = p.command == "takedown"
    guard let reason = p.options["--reason"] ?? (takedown ? nil : "") else { throw CLIError.usage("takedown needs --reason TEXT") }
    let e = try ledger.tombstone(st.id, contribution: id, takedown: takedown, reason: reason, by: try signer().signingKey)
    out("\(e.id.hex)  \(takedown ? "takedown" : "withdrawal") of \(id.hex.prefix(16))… pending; it takes effect when sequenced")
    return 0
}

func runGC(_ p: Parsed) throws -> Int32 {
    let r = try collectGarbage(openLedger(), dryRun: p.has("--dry-run"))
    if p.has("--json") {
        try printEncodable(r)
    } else {
        let s = r.sweep
        out("\(r.dryRun ? "would delete" : "deleted") \(s.chunks) chunk(s) (\(humanBytes(s.bytes))), \(s.blobs) blob(s), \(s.trees) tree(s), "
            + "\(s.roots) added root(s) under a tombstone, \(r.sidecars) sidecar(s) no live contribution names; \(s.deadLeases) dead lease(s) cleared")
    }
    return 0
}

/// Writes a bundle to `path` atomically (temporary name, fsync, rename), sealed when
/// recipients are given (the plain bundle then lives only in an unlinked temporary file).
private func writeBundle(to path: String, sealedTo recipients: [[UInt8]], _ export: (Int32) throws -> BundleSummary) throws -> BundleSummary {
    let (out, tmp) = try createTemporaryFile(beside: path)
    do {
        defer { close(out) }
        var summary: BundleSummary
        if recipients.isEmpty {
            summary = try export(out)
        } else {
            let dir = (path as NSString).deletingLastPathComponent
            let plain = open(dir.isEmpty ? "." : dir, oTmpFile | O_RDWR | O_CLOEXEC, 0o600)
            guard plain >= 0 else { throw StoreError.io(path: dir, operation: "create a temporary file in", errno: errno) }
            defer { close(plain) }
            summary = try export(plain)
            guard lseek(plain, 0, SEEK_SET) == 0 else { throw StoreError.io(path: tmp, operation: "read", errno: errno) }
            try SealedBundle.seal(from: plain, to: out, recipients: recipients)
            summary.bytes = UInt64(lseek(out, 0, SEEK_CUR))
        }
        guard fsync(out) == 0, rename(tmp, path) == 0 else { throw StoreError.io(path: path, operation: "write", errno: errno) }
        return summary
    } catch {
        unlink(tmp)
        throw error
    }
}

/// A recipient's X25519 key: from a public identity file (`datanet id export`), certified by its
/// Ed25519 key, a contact whose X25519 key is known, or a local identity; the Ed25519 key must be
/// allowed to read the Datanet.
private func sealRecipient(_ text: String, policy: PolicyState) throws -> [UInt8] {
    let (key, x25519): (PublicKey, [UInt8])
    if access(text, F_OK) == 0 {
        let identity: PublicIdentity
        do { identity = try JSONDecoder().decode(PublicIdentity.self, from: try readInput(text)) } catch {
            throw CLIError.failure("\(text) is not a public identity file (`datanet id export NAME`)")
        }
        key = try identity.verified()
        x25519 = Hex.decode(identity.x25519)!
    } else if Identity.isValidName(text), let c = try ContactBook(storeDirectory: storeDir).contact(named: text) {
        guard let x = c.agreementKey else {
            throw CLIError.failure("the contact \(text) was imported by key alone: import their public identity file (`datanet id export` on their side) to seal to them")
        }
        (key, x25519) = (c.publicKey, x)
    } else {
        let local = try IdentityStore(storeDirectory: storeDir).load(text)
        (key, x25519) = (local.publicKey, local.agreementKey.publicKey)
    }
    if !policy.mayRead(key) {
        throw CLIError.failure("\(key) may not read \(terminalSafe(policy.name)); seal only to its readers, curators, owner or sequencer")
    }
    return x25519
}

/// What a bundle export or import moved, in one line; an import that brought nothing new says so.
func bundleSummary(_ s: BundleSummary, export: Bool, name: String?) -> String {
    let who = name.map { "\(terminalSafe($0)) (\(s.datanet.prefix(12)))" } ?? String(s.datanet.prefix(16)) + "…"
    func n(_ k: Int, _ what: String) -> String { "\(k) \(what)\(k == 1 ? "" : "s")" }
    if export {
        return "exported \(who): " + (s.to > s.from ? "leaves \(s.from)–\(s.to - 1)" : "no leaf") + ", \(n(s.checkpoints, "checkpoint")), "
            + "\(n(s.records, "pending record")), \(n(s.objects, "object")), \(n(s.sidecars, "sidecar")), \(humanBytes(s.bytes))"
    }
    if s.newLeaves == 0 && s.records == 0 && s.signatures == 0 && s.objects == 0 && s.sidecars == 0 {
        return "already up to date: \(who); the bundle (" + (s.to > s.from ? "leaves \(s.from)–\(s.to - 1)" : "no leaf") + ") brought nothing new"
    }
    var parts = [s.newLeaves > 0 ? "\(s.newLeaves) new lea\(s.newLeaves == 1 ? "f" : "ves") (\(s.to - UInt64(s.newLeaves))–\(s.to - 1))" : "no new leaf"]
    if s.records > 0 { parts.append(n(s.records, "pending record")) }
    if s.signatures > 0 { parts.append("\(n(s.signatures, "signature")) added to pending records") }
    parts.append("\(n(s.objects, "object")) and \(n(s.sidecars, "sidecar")) kept")
    if s.skipped > 0 { parts.append("\(s.skipped) that no live record here reaches left out") }
    return "imported \(who): " + parts.joined(separator: ", ") + "; size now \(s.to)"
}
