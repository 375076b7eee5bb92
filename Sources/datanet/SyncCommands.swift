import DatanetCrypto
import DatanetLedger
import DatanetRecords
import DatanetSync
import Foundation
import Synchronization

/// Set by SIGINT and SIGTERM: `serve` stops accepting, lets sessions in flight finish, exits.
private let stopRequested = Atomic<Bool>(false)

/// `datanet serve`: serves this store's Datanets to peers over Noise (schema/protocol.md), one
/// thread per connection up to `--max-connections`; as a Datanet's sequencer, sequences what
/// arrives every `--sequence-every` seconds when asked.
func runServe(_ p: Parsed) throws -> Int32 {
    if let name = p.options["--as"] { signerName = name }
    let ledger = try openLedger()
    let me = try signer()
    let listen = p.options["--listen"] ?? "127.0.0.1:7420"
    // Port 0 (any free port, printed) is fine to listen on, though never to connect to.
    let any = listen.hasSuffix(":0") ? Contact.hostAndPort(listen.dropLast() + "1").map { ($0.host, UInt16(0)) } : nil
    guard let (host, port) = any ?? Contact.hostAndPort(listen) else { throw CLIError.usage("--listen '\(terminalSafe(listen))' is not HOST:PORT (e.g. 127.0.0.1:7420)") }
    let every = try p.options["--sequence-every"].map { text -> Double in
        guard let s = Double(text), s > 0, s <= 86_400 else { throw CLIError.usage("--sequence-every takes seconds between 0 and 86400, not '\(terminalSafe(text))'") }
        return s
    }
    func bounded(_ option: String, _ range: ClosedRange<Int>, _ otherwise: Int) throws -> Int {
        try p.options[option].map { text -> Int in
            guard let n = Int(text), range.contains(n) else {
                throw CLIError.usage("\(option) takes \(range.lowerBound) to \(range.upperBound), not '\(terminalSafe(text))'")
            }
            return n
        } ?? otherwise
    }
    let cap = try bounded("--max-connections", 1...1024, 64)
    // Handshakes are the work a peer can demand before proving who it is: few at once, each
    // within a deadline, so a flood of silent or trickling connections delays others by at
    // most the deadline and cannot hold the server.
    let handshakeCap = try bounded("--max-handshakes", 1...1024, 16)
    let handshakeDeadline = try bounded("--handshake-timeout", 1...300, 10)
    let maximumPush = try p.options["--max-push"].map { text -> UInt64 in
        guard let n = StoreConfig.byteCount(text), n > 0 else { throw CLIError.usage("--max-push takes a byte count such as 512MiB or 16GiB, not '\(terminalSafe(text))'") }
        return n
    } ?? BundleTransfer.defaultMaximum
    let maxAge = try proposalMaxAge(p)
    let listener = try TCPListener(host: host, port: port)
    let log = EventLog(json: p.has("--json"))
    let event = log.emit
    // A parent may start us with these blocked (a spawn inherits its thread's mask): unblock.
    var mask = sigset_t()
    sigemptyset(&mask)
    for sig in [SIGINT, SIGTERM] {
        sigaddset(&mask, sig)
        signal(sig) { _ in stopRequested.store(true, ordering: .relaxed) }
    }
    pthread_sigmask(SIG_UNBLOCK, &mask, nil)
    event(["event": "listening", "address": "\(host):\(listener.port)", "identity": me.publicKey.description],
          "serving as \(me.name) (\(me.publicKey)) on \(host):\(listener.port); Ctrl-C stops")
    let sessions = DispatchGroup()
    let open = Atomic<Int>(0), handshaking = Atomic<Int>(0)
    var lastSequenced = Date(), lastExpired = Date.distantPast
    let expiring = Atomic<Bool>(false)
    while !stopRequested.load(ordering: .relaxed) {
        if let every, Date().timeIntervalSince(lastSequenced) >= every {
            lastSequenced = Date()
            sequenceWhatArrived(ledger) { event($0, $1) }
        }
        // Expiry reads every pending record: on a thread of its own, one pass at a time, so
        // connections are accepted meanwhile.
        if Date().timeIntervalSince(lastExpired) >= 60, !expiring.exchange(true, ordering: .acquiring) {
            lastExpired = Date()
            sessions.enter()
            Thread.detachNewThread {
                defer { expiring.store(false, ordering: .releasing); sessions.leave() }
                expireWhatAged(ledger, maxAge: maxAge) { event($0, $1) }
            }
        }
        // At the handshake cap, new connections wait in the kernel's listen queue (each
        // handshake under way ends within the deadline), rather than being turned away.
        if handshaking.load(ordering: .relaxed) >= handshakeCap { usleep(5_000); continue }
        guard listener.waitForConnection(milliseconds: 250), let socket = try? listener.accept(timeout: 30) else { continue }
        guard open.add(1, ordering: .relaxed).newValue <= cap else {
            open.subtract(1, ordering: .relaxed)
            event(["event": "refused", "address": socket.address, "reason": "connection cap"], "refused \(socket.address): \(cap) connections open")
            continue
        }
        handshaking.add(1, ordering: .relaxed)
        sessions.enter()
        Thread.detachNewThread {
            defer { open.subtract(1, ordering: .relaxed); sessions.leave() }
            do {
                let c: PeerConnection
                do {
                    defer { handshaking.subtract(1, ordering: .relaxed) }
                    c = try PeerConnection.open(socket, role: .responder, identity: me.signingKey, now: UInt64(Date().timeIntervalSince1970),
                                                deadline: handshakeDeadline)
                }
                try SyncServer(ledger: ledger, maximumPush: maximumPush).serve(c) { e in
                    var f: [String: Any] = ["event": e.kind, "peer": e.peer.description]
                    if let d = e.datanet { f["datanet"] = d.hex }
                    if e.bytes > 0 { f["bytes"] = e.bytes }
                    if e.kind == "push" { (f["leaves"], f["records"]) = (e.leaves, e.records) }
                    if !e.detail.isEmpty { f["detail"] = e.detail }
                    let short = String(e.peer.description.prefix(12))
                    event(f, "\(short): \(e.kind)" + (e.datanet.map { " \($0.hex.prefix(12))" } ?? "") + (e.bytes > 0 ? " \(e.bytes) B" : "")
                          + (e.detail.isEmpty ? "" : ": \(terminalSafe(e.detail))"))
                }
            } catch {
                event(["event": "closed", "address": socket.address, "error": "\(error)"], "\(socket.address): \(terminalSafe("\(error)"))")
            }
        }
    }
    event(["event": "stopping", "sessions": open.load(ordering: .relaxed)], "stopping: waiting for \(open.load(ordering: .relaxed)) session(s) to finish")
    _ = sessions.wait(timeout: .now() + 60)
    event(["event": "stopped"], "stopped")
    return 0
}

/// Drops what expired or became moot in each Datanet's pending records (`serve`, each minute).
private func expireWhatAged(_ ledger: Ledger, maxAge: UInt64, event: ([String: Any], String) -> Void) {
    guard let all = try? ledger.reader.datanets() else { return }
    for st in all {
        do {
            let r = try ledger.expirePending(st.id, maxAge: maxAge, now: nowMillis())
            guard r.total > 0 else { continue }
            event(["event": "expired", "datanet": st.id.hex, "contributions": r.contributions, "reviews": r.reviews, "policies": r.policies, "tombstones": r.tombstones],
                  "expired in \(terminalSafe(st.policy.name)): \(r.contributions) contribution(s) past the maximum age, \(r.reviews + r.policies + r.tombstones) record(s) made moot")
        } catch {
            event(["event": "error", "datanet": st.id.hex, "detail": "\(error)"], "expiring in \(terminalSafe(st.policy.name)) failed: \(terminalSafe("\(error)"))")
        }
    }
}

/// `serve`'s output: one line per event, JSON or text, whole lines from any thread.
private final class EventLog: @unchecked Sendable {
    let json: Bool
    private let lock = Mutex(())
    init(json: Bool) { self.json = json }

    func emit(_ fields: [String: Any], _ text: String) {
        lock.withLock { _ in
            if json, let data = try? JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys]) {
                writeFD(1, data + [0x0a])
            } else {
                out(text)
            }
        }
    }
}

/// Sequences each Datanet whose sequencer key this store holds that has records pending.
private func sequenceWhatArrived(_ ledger: Ledger, event: ([String: Any], String) -> Void) {
    guard let all = try? ledger.reader.datanets() else { return }
    for st in all {
        guard let key = localIdentity(for: st.policy.sequencer), let pending = try? ledger.reader.pendingRecords(st.id), !pending.isEmpty else { continue }
        do {
            let r = try ledger.sequence(st.id, key: key.signingKey)
            event(["event": "sequenced", "datanet": st.id.hex, "size": r.size, "intakes": r.intakes.count, "decisions": r.decisions.count],
                  "sequenced \(terminalSafe(st.policy.name)): \(sequenceSummary(r, before: st.size))")
        } catch {
            event(["event": "error", "datanet": st.id.hex, "detail": "\(error)"], "sequencing \(terminalSafe(st.policy.name)) failed: \(terminalSafe("\(error)"))")
        }
    }
}

/// A bundle's transfer on a terminal: a `ProgressBar` made once the bundle's length is known.
/// Updated from the thread that receives a run (one thread at a time).
private final class TransferBar: @unchecked Sendable {
    private let label: String, quiet: Bool
    private var bar: ProgressBar?
    init(label: String, quiet: Bool) { (self.label, self.quiet) = (label, quiet) }
    func update(_ done: UInt64, _ total: UInt64) {
        if bar == nil { bar = ProgressBar(total: total, label: label, quiet: quiet) }
        bar?.update(done, total: total)
    }
    func finish() { bar?.finish() }
}

/// `datanet sync PEER|HOST:PORT [DATANET...]`: pulls what the peer has that this store lacks
/// (cloning Datanets it does not hold), then pushes what the peer lacks (leaves and pending
/// records), each bundle checked by the receiver's import.
func runSync(_ p: Parsed) throws -> Int32 {
    if let name = p.options["--as"] { signerName = name }
    if p.has("--push") && p.has("--pull") { throw CLIError.usage("give --push or --pull, not both (both ways is the default)") }
    let me = try signer()
    let target = p.positionals[0]
    let book = ContactBook(storeDirectory: storeDir)
    let contact = try book.contact(named: target)
    let address = contact?.address ?? target
    guard let (host, port) = Contact.hostAndPort(address) else {
        throw CLIError.usage("'\(terminalSafe(target))' is neither a peer (`datanet peer ls`) nor HOST:PORT")
    }
    let socket = try TCPSocket.connect(host: host, port: port, timeout: 30)
    let connection = try PeerConnection.open(socket, role: .initiator, identity: me.signingKey, now: UInt64(Date().timeIntervalSince1970))
    if let contact, connection.peer != contact.publicKey {
        guard let note = handoffNote(contact.name, from: contact.publicKey, to: connection.peer) else {
            throw CLIError.failure("\(contact.name) is pinned to \(contact.ed25519), but \(address) presented \(connection.peer); if they changed keys (ask them), `datanet peer add \(contact.name) \(address) --repin`")
        }
        try book.setAddress(contact.name, address, key: connection.peer)
        errLine(note)
    }
    // The store is opened for writing only once the peer has proved the key pinned for it.
    let ledger = try openLedger()
    let client = SyncClient(connection)
    try client.hello()
    let remote = try client.list()
    let maxAge = try proposalMaxAge(p)
    var wanted = remote
    // Datanets held here that this identity may contribute to but not read: the peer does not
    // list them; only this identity's own pending records go to it.
    var ownOnly = try ledger.reader.datanets().filter { st in
        !st.policy.mayRead(me.publicKey) && st.policy.mayContribute(me.publicKey) && !remote.contains { $0.id == st.id }
    }
    if p.positionals.count > 1 {
        var named = [DatanetState]()
        wanted = try p.positionals.dropFirst().compactMap { name in
            if let st = try? ledger.reader.resolveDatanet(name), let r = remote.first(where: { $0.id == st.id }) { return r }
            if let st = try? ledger.reader.resolveDatanet(name), ownOnly.contains(where: { $0.id == st.id }) { named.append(st); return nil }
            let matches = remote.filter { $0.name == name || $0.id.hex.hasPrefix(name.lowercased()) }
            guard matches.count == 1 else {
                throw CLIError.failure(matches.isEmpty ? "\(address) serves no Datanet '\(terminalSafe(name))' to \(me.name)" : "'\(terminalSafe(name))' names \(matches.count) Datanets at \(address); give more of the id")
            }
            return matches[0]
        }
        ownOnly = named
    }
    var rows = [[String: Any]]()
    var (leavesIn, recordsIn, objectsIn, leavesOut, recordsOut) = (0, 0, 0, UInt64(0), UInt64(0))
    var expired = 0
    var reconciled = Reconciliation.Outcome()
    func note(_ r: Reconciliation.Outcome, into row: inout [String: Any]) {
        (row["reconcile_rounds"], row["reconcile_bytes_sent"], row["reconcile_bytes_received"]) = (r.rounds, r.bytesSent, r.bytesReceived)
        reconciled.rounds += r.rounds; reconciled.bytesSent += r.bytesSent; reconciled.bytesReceived += r.bytesReceived
    }
    var disagreed = false, incomplete = false
    for r in wanted {
        var row: [String: Any] = ["datanet": r.id.hex, "name": r.name]
        // The peer's newest checkpoint is checked against this log before anything moves: a
        // fork is kept as evidence and nothing of that Datanet is exchanged.
        switch try SyncClient.observe(r, in: ledger) {
        case .fork(let evidence)?:
            errLine("datanet: FORK: \(r.name): the peer's signed checkpoint and this store's disagree; the evidence is kept (`datanet audit`), nothing was exchanged")
            (row["fork"], row["evidence"], disagreed) = (true, evidence, true)
            rows.append(row)
            continue
        case .inconsistent(let size)?:
            errLine("datanet: \(r.name): the peer's checkpoint at size \(size) disagrees with this log (this store holds no signed checkpoint of that size to prove a fork; the note is kept as observed); nothing was exchanged")
            (row["inconsistent_at"], disagreed) = (size, true)
            rows.append(row)
            continue
        case .consistent?, nil:
            break
        }
        let holds = (try? ledger.reader.state(of: r.id)) != nil
        if holds { expired += try ledger.expirePending(r.id, maxAge: maxAge, now: nowMillis()).total }
        // Where the queue stands before reconciling: everything queued before it is held by
        // the peer or pushed now (what `status` counts as not yet sent starts there).
        let position = try ledger.reader.queuePosition()
        let pullBar = TransferBar(label: "pull \(terminalSafe(r.name))", quiet: p.has("--json"))
        let pushBar = TransferBar(label: "push \(terminalSafe(r.name))", quiet: p.has("--json"))
        // Large content a version-4 peer left out of the pull's batches, fetched in windows.
        let fetchBar = TransferBar(label: "fetch \(terminalSafe(r.name))", quiet: p.has("--json"))
        let x = try client.exchange(r.id, peerSize: r.size, in: ledger, pull: !p.has("--push"), push: !p.has("--pull"), recordsOnly: p.has("--records-only"),
                                    pullProgress: pullBar.update, fetchProgress: fetchBar.update, pushProgress: pushBar.update)
        pullBar.finish(); fetchBar.finish(); pushBar.finish()
        note(x.reconciled, into: &row)
        if let e = x.fetchError {
            errLine("datanet: \(terminalSafe(r.name)): \(terminalSafe(e)); what arrived is kept, and `datanet fetch \(r.id.hex.prefix(16))` fetches the rest")
            (row["fetch_error"], incomplete) = (e, true)
        }
        if let (s, bytes) = x.pulled {
            let fetched = x.fetched ?? FetchSummary()
            (row["leaves_in"], row["records_in"], row["objects_in"], row["bytes_in"]) = (s.newLeaves, s.records, s.objects + fetched.objects, bytes + fetched.bytes)
            leavesIn += s.newLeaves; recordsIn += s.records; objectsIn += s.objects + fetched.objects
        }
        var peerSize = r.size
        if let pushed = x.pushed {
            (row["leaves_out"], row["records_out"], row["bytes_out"]) = (pushed.leaves, pushed.records, pushed.bytes)
            leavesOut += pushed.leaves; recordsOut += pushed.records
            peerSize = max(r.size, (try? ledger.reader.state(of: r.id))?.size ?? 0)
        }
        if let contact {
            try ContactBook(storeDirectory: storeDir).recordSynced(contact.name, datanet: r.id, size: peerSize, queueSent: p.has("--pull") ? nil : position)
        }
        rows.append(row)
    }
    // Datanets this identity may contribute to but not read: its own pending records only.
    for st in ownOnly where !p.has("--pull") {
        expired += try ledger.expirePending(st.id, maxAge: maxAge, now: nowMillis()).total
        var row: [String: Any] = ["datanet": st.id.hex, "name": st.policy.name, "own_records_only": true]
        guard try !ledger.pendingItems(st.id, signedBy: me.publicKey).isEmpty else { continue }
        let sets: Reconciliation.Outcome
        do { sets = try client.reconcile(st.id, in: ledger, signedBy: me.publicKey) } catch SyncError.refused(code: "unknown-datanet", _) {
            continue // the peer does not hold it (or will not take this identity's records)
        }
        note(sets, into: &row)
        if !sets.have.isEmpty {
            let x = try client.push(st.id, since: 0, recordsOnly: p.has("--records-only"), have: sets.have, signer: me.publicKey, from: ledger)
            (row["records_out"], row["bytes_out"]) = (x.records, x.bytes)
            recordsOut += x.records
        }
        rows.append(row)
    }
    try client.bye()
    let summary: [String: Any] = ["peer": connection.peer.description, "datanets": rows, "round_trips": client.roundTrips,
                                  "bytes_sent": socket.bytesSent, "bytes_received": socket.bytesReceived,
                                  "reconcile_rounds": reconciled.rounds, "reconcile_bytes_sent": reconciled.bytesSent,
                                  "reconcile_bytes_received": reconciled.bytesReceived, "expired": expired]
    if p.has("--json") {
        try printJSON(summary)
    } else {
        let who = contact?.name ?? address
        out("synced \(wanted.count) Datanet(s) with \(who): in \(leavesIn) leaves, \(recordsIn) records, \(objectsIn) objects; out \(leavesOut) leaves, \(recordsOut) records; "
            + "\(client.roundTrips) round trips (\(reconciled.rounds) reconciling pending records, \(reconciled.bytesSent + reconciled.bytesReceived) B), "
            + "\(socket.bytesReceived) B received, \(socket.bytesSent) B sent" + (expired > 0 ? "; \(expired) expired pending record(s) dropped" : ""))
    }
    return disagreed || incomplete ? 1 : 0
}

/// `--proposal-max-age`: how old a pending contribution may grow here before it is dropped
/// (schema/negentropy.md "Expiry"): seconds, or a number with s, m, h or d; default 30 days.
/// Returned in milliseconds, the unit of created-at.
func proposalMaxAge(_ p: Parsed) throws -> UInt64 {
    guard let text = p.options["--proposal-max-age"] else { return Ledger.defaultProposalMaxAge }
    let units: [Character: UInt64] = ["s": 1, "m": 60, "h": 3_600, "d": 86_400]
    var digits = Substring(text), unit: UInt64 = 1
    if let last = text.last, let u = units[last] { (digits, unit) = (text.dropLast(), u) }
    guard let n = UInt64(digits), n > 0, n <= 36_500 * 86_400 / unit else {
        throw CLIError.usage("--proposal-max-age takes a duration such as 30d, 12h or 3600 (seconds), up to 100 years, not '\(terminalSafe(text))'")
    }
    return n * unit * 1_000
}
