import DatanetCrypto
import DatanetLedger
import DatanetObjects
import DatanetRecords
import DatanetSync
import Foundation

/// A connection to peer `contact` (its pinned key checked), past `hello`.
func connectPeer(_ contact: Contact) throws -> (SyncClient, TCPSocket) {
    guard let address = contact.address, let (host, port) = Contact.hostAndPort(address) else {
        throw CLIError.failure("\(contact.name) has no address (`datanet peer add \(contact.name) HOST:PORT`)")
    }
    let me = try signer()
    let socket = try TCPSocket.connect(host: host, port: port, timeout: 30)
    let connection = try PeerConnection.open(socket, role: .initiator, identity: me.signingKey, now: UInt64(Date().timeIntervalSince1970))
    guard connection.peer == contact.publicKey else {
        throw CLIError.failure("\(contact.name) is pinned to \(contact.ed25519), but \(address) presented \(connection.peer); if they changed keys (ask them), `datanet peer add \(contact.name) \(address) --repin`")
    }
    let client = SyncClient(connection)
    try client.hello()
    return (client, socket)
}

/// What fetching brought: contributions whose content is now whole here, objects and bytes.
struct Fetched {
    var contributions = 0, objects = 0, bytes: UInt64 = 0
    /// Sketches of text contents made as they arrived, for their near-duplicate flags.
    var sketches = [RecordID: TextSketch]()
}

/// Fetches the content this store lacks of `wanted` (contributions of `d`; content a
/// tombstone erased in `d` is skipped: it is gone for good) from the peers that serve `d`,
/// `from` alone when given, else each peer (`datanet peer ls`) in turn. With `offline`, a
/// lack is an error that says how to fetch instead. Throws when some content could be
/// fetched from no peer, naming why.
func fetchMissing(_ ledger: Ledger, _ d: DatanetID, _ wanted: [(id: RecordID, contribution: Contribution)], offline: Bool,
                  from: Contact? = nil, quiet: Bool = false) throws -> Fetched {
    let live = try wanted.filter { try !ledger.reader.isErased(d, contribution: $0.id, content: $0.contribution.content) }
    let items = live.map { (FetchItem($0.id, $0.contribution), $0.contribution.size) }
    let fetched = Result { try fetchMissing(ledger, d, items, what: "contribution(s)", offline: offline, from: from, quiet: quiet) }
    // What is held (fetched now or before) is flagged as a clone would have flagged it, even
    // when the rest failed; the fetch's own error is the one reported. When nothing came, a
    // store that cannot be written (flags are derived) still answers, as it did before.
    do { try ledger.flagFetched(d, live.map(\.id), sketches: (try? fetched.get())?.sketches ?? [:]) } catch {
        if case .success(let got) = fetched, got.contributions > 0 { throw error }
    }
    return try fetched.get()
}

/// `fetchMissing` for any records' content (contributions' or models' artifacts), each with
/// its size for the progress bar; `what` names them in messages.
func fetchMissing(_ ledger: Ledger, _ d: DatanetID, _ wanted: [(item: FetchItem, size: UInt64)], what: String, offline: Bool,
                  from: Contact? = nil, quiet: Bool = false) throws -> Fetched {
    var missing = try wanted.filter { try !ledger.reader.holdsObject($0.item.root, kind: $0.item.kind) }
    var done = Fetched()
    guard !missing.isEmpty else { return done }
    if offline {
        throw CLIError.failure("the content of \(missing.count) \(what) is not in this store (synced with --records-only?); without --offline it is fetched from a peer, or run `datanet fetch`")
    }
    let peers = try from.map { [$0] } ?? ContactBook(storeDirectory: storeDir).all().filter { $0.address != nil }
    guard !peers.isEmpty else {
        throw CLIError.failure("the content of \(missing.count) \(what) is not in this store and no peer is known to fetch it from (`datanet peer add NAME HOST:PORT`)")
    }
    var why = [String]()
    let wantedCount = missing.count
    for peer in peers where !missing.isEmpty {
        do {
            let (client, _) = try connectPeer(peer)
            defer { try? client.bye() }
            guard try client.list().contains(where: { $0.id == d }) else { why.append("\(peer.name) does not serve it"); continue }
            let bar = ProgressBar(total: missing.reduce(0) { $0 + $1.size }, label: "fetch from \(peer.name)", quiet: quiet)
            defer { bar.finish() }
            // Every missing item at once: requests stay in flight across them.
            let got = try client.fetch(d, missing.map(\.item), into: ledger) { s in bar.update(s.bytes) }
            (done.objects, done.bytes) = (done.objects + got.objects, done.bytes + got.bytes)
            done.sketches.merge(got.sketches) { a, _ in a }
            why += got.failed.values.prefix(3).map { "\(peer.name): \($0)" }
        } catch {
            why.append("\(peer.name): \(error)")
        }
        // What this peer could not give (refused, or the connection ended) goes to the next.
        missing = try missing.filter { try !ledger.reader.holdsObject($0.item.root, kind: $0.item.kind) }
    }
    done.contributions = wantedCount - missing.count
    guard missing.isEmpty else {
        throw CLIError.failure("the content of \(missing.count) \(what) could not be fetched (\(why.prefix(3).joined(separator: "; ")))")
    }
    return done
}

/// `datanet fetch DATANET [PATH-PREFIX|ID] [--from PEER] [--json]`: fetches the content of a
/// Datanet's contributions this store lacks (after `sync --records-only`): one contribution by
/// id, the files whose names start with a prefix, or all of them.
func runFetch(_ p: Parsed) throws -> Int32 {
    let ledger = try openLedger()
    let st = try ledger.reader.resolveDatanet(p.positionals[0])
    let from = try p.options["--from"].map { name -> Contact in
        guard let c = try ContactBook(storeDirectory: storeDir).contact(named: name), c.address != nil else {
            throw CLIError.usage("no peer named '\(terminalSafe(name))' (`datanet peer ls` lists them)")
        }
        return c
    }
    // A model of this Datanet: its artifact.
    if let which = p.positionals.dropFirst().first, let m = try findModel(ledger, which), m.record.datanet == st.id {
        let got = try fetchMissing(ledger, st.id, [(FetchItem(contribution: m.id, kind: .blob, root: m.record.artifact), m.record.artifactSize)],
                                   what: "model artifact", offline: false, from: from, quiet: p.has("--json"))
        if p.has("--json") {
            try printJSON(["datanet": st.id.hex, "model": m.id.hex, "fetched": got.contributions, "objects": got.objects, "bytes": got.bytes])
        } else {
            out(got.contributions == 0 ? "the artifact of model \(m.id.hex.prefix(16)) is here already"
                : "fetched the artifact of model \(m.id.hex.prefix(16)): \(got.objects) objects, \(humanBytes(got.bytes))")
        }
        return 0
    }
    var rows = try ledger.reader.statuses(st.id).filter { $0.state != .withdrawn && $0.state != .takenDown }
    if let which = p.positionals.dropFirst().first {
        let byID = isHexPrefix(which) ? rows.filter { $0.id.hex.hasPrefix(which.lowercased()) } : []
        if byID.count == 1 {
            rows = byID
        } else {
            rows = rows.filter { ($0.sidecar?.fileName ?? "").hasPrefix(which) }
            guard !rows.isEmpty else { throw CLIError.failure("no contribution of \(terminalSafe(st.policy.name)) has the id or a file name starting '\(terminalSafe(which))'") }
        }
    }
    let got = try fetchMissing(ledger, st.id, rows.map { ($0.id, $0.contribution) }, offline: false, from: from, quiet: p.has("--json"))
    if p.has("--json") {
        try printJSON(["datanet": st.id.hex, "contributions": rows.count, "fetched": got.contributions, "objects": got.objects, "bytes": got.bytes])
    } else {
        out(got.contributions == 0 ? "the content of all \(rows.count) contribution(s) is here already"
            : "fetched the content of \(got.contributions) contribution(s): \(got.objects) objects, \(humanBytes(got.bytes))")
    }
    return 0
}
