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
    var lastSequenced = Date()
    while !stopRequested.load(ordering: .relaxed) {
        if let every, Date().timeIntervalSince(lastSequenced) >= every {
            lastSequenced = Date()
            sequenceWhatArrived(ledger) { event($0, $1) }
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
    var wanted = remote
    if p.positionals.count > 1 {
        wanted = try p.positionals.dropFirst().map { name in
            if let st = try? ledger.reader.resolveDatanet(name), let r = remote.first(where: { $0.id == st.id }) { return r }
            let matches = remote.filter { $0.name == name || $0.id.hex.hasPrefix(name.lowercased()) }
            guard matches.count == 1 else {
                throw CLIError.failure(matches.isEmpty ? "\(address) serves no Datanet '\(terminalSafe(name))' to \(me.name)" : "'\(terminalSafe(name))' names \(matches.count) Datanets at \(address); give more of the id")
            }
            return matches[0]
        }
    }
    var rows = [[String: Any]]()
    var (leavesIn, recordsIn, objectsIn, leavesOut, recordsOut) = (0, 0, 0, UInt64(0), UInt64(0))
    var disagreed = false
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
        let mine = (try? ledger.reader.state(of: r.id))?.size ?? 0
        // After a pull, the records the peer holds pending are known: a push goes only when it
        // lacks leaves or records this store holds (or holds them with fewer signatures).
        var peerHolds: Set<PendingMark>?
        if !p.has("--push") {
            let bar = TransferBar(label: "pull \(terminalSafe(r.name))", quiet: p.has("--json"))
            let (s, bytes, theirs) = try client.pull(r.id, since: min(mine, r.size), recordsOnly: p.has("--records-only"), into: ledger, progress: bar.update)
            bar.finish()
            (row["leaves_in"], row["records_in"], row["objects_in"], row["bytes_in"]) = (s.newLeaves, s.records, s.objects, bytes)
            leavesIn += s.newLeaves; recordsIn += s.records; objectsIn += s.objects
            peerHolds = Set(theirs)
        }
        let held = try? ledger.reader.state(of: r.id)
        // Where the queue stands before the marks are compared: everything queued before it is
        // held by the peer or pushed now (what `status` counts as not yet sent starts there).
        let position = try ledger.reader.queuePosition()
        let lacking = ((try? ledger.reader.pendingMarks(r.id)) ?? []).filter { !(peerHolds?.contains($0) ?? false) }
        var peerSize = r.size
        if !p.has("--pull"), let held, held.size > r.size || !lacking.isEmpty {
            let bar = TransferBar(label: "push \(terminalSafe(r.name))", quiet: p.has("--json"))
            let x = try client.push(r.id, since: min(held.size, r.size), recordsOnly: p.has("--records-only"), from: ledger, progress: bar.update)
            bar.finish()
            (row["leaves_out"], row["records_out"], row["bytes_out"]) = (x.leaves, x.records, x.bytes)
            leavesOut += x.leaves; recordsOut += x.records
            peerSize = max(r.size, held.size)
        }
        if let contact {
            try ContactBook(storeDirectory: storeDir).recordSynced(contact.name, datanet: r.id, size: peerSize, queueSent: p.has("--pull") ? nil : position)
        }
        rows.append(row)
    }
    try client.bye()
    let summary: [String: Any] = ["peer": connection.peer.description, "datanets": rows, "round_trips": client.roundTrips,
                                  "bytes_sent": socket.bytesSent, "bytes_received": socket.bytesReceived]
    if p.has("--json") {
        try printJSON(summary)
    } else {
        let who = contact?.name ?? address
        out("synced \(wanted.count) Datanet(s) with \(who): in \(leavesIn) leaves, \(recordsIn) records, \(objectsIn) objects; out \(leavesOut) leaves, \(recordsOut) records; "
            + "\(client.roundTrips) round trips, \(socket.bytesReceived) B received, \(socket.bytesSent) B sent")
    }
    return disagreed ? 1 : 0
}
