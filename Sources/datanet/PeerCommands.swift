import DatanetCrypto
import DatanetLedger
import DatanetRecords
import DatanetSync
import Foundation

/// `datanet peer add|ls|rm`: peers are contacts with an address (schema/identity.md
/// "Contacts"). The first `add` of a peer without `--key` pins the key the peer proves in a
/// handshake (trust on first use, printed); a later one that meets another key is refused with
/// both keys shown unless `--repin`.
func runPeer(_ p: Parsed) throws -> Int32 {
    _ = try openStore()
    let book = ContactBook(storeDirectory: storeDir)
    let args = Array(p.positionals.dropFirst())
    switch p.positionals[0] {
    case "add":
        guard args.count == 2 else { throw CLIError.usage("usage: datanet peer add NAME HOST:PORT [--key CONTACT|KEY] [--repin]") }
        let (name, address) = (args[0], args[1])
        guard let (host, port) = Contact.hostAndPort(address) else { throw CLIError.usage("'\(terminalSafe(address))' is not HOST:PORT (e.g. 127.0.0.1:7420)") }
        let given = try p.options["--key"].map { try resolveKey($0) }
        let key = try given ?? handshakeKey(host: host, port: port)
        if let mine = localIdentity(for: key) { throw CLIError.failure("\(address) presents this store's own identity \(mine.name)") }
        let existing = try book.contact(named: name)
        if let existing {
            let handoff = existing.publicKey == key || p.has("--repin") ? nil : handoffNote(name, from: existing.publicKey, to: key)
            if let handoff { errLine(handoff) }
            if existing.publicKey != key && !p.has("--repin") && handoff == nil {
                throw CLIError.failure("\(name) is pinned to \(existing.ed25519), but \(given == nil ? "\(address) presented" : "--key names") \(key); if they changed keys (ask them), run again with --repin")
            }
            try book.setAddress(name, address, key: key)
        } else {
            try book.add(try Contact(key: key, name: name, addedMs: nowMillis(), address: address), identities: IdentityStore(storeDirectory: storeDir))
        }
        if p.has("--json") {
            try printJSON(["name": name, "address": address, "key": key.description, "pinned_on_first_use": given == nil && existing == nil])
        } else {
            out("peer \(name) at \(address): \(key)" + (given == nil && existing == nil ? " (pinned on first use: check this key with them)" : ""))
        }
    case "ls":
        guard args.isEmpty else { throw CLIError.usage("`datanet peer ls` takes no argument") }
        let peers = try book.all().filter { $0.address != nil }
        if p.has("--json") {
            try printJSON(peers.map { ["name": $0.name, "address": $0.address!, "key": $0.ed25519] })
        } else if peers.isEmpty {
            out("no peers; add one with `datanet peer add NAME HOST:PORT`")
        } else {
            for c in peers { out("\(c.name)  \(c.address!)  \(c.ed25519)") }
        }
    case "rm":
        guard args.count == 1 else { throw CLIError.usage("usage: datanet peer rm NAME") }
        guard try book.contact(named: args[0])?.address != nil else { throw CLIError.failure("no peer named '\(terminalSafe(args[0]))' (`datanet peer ls` lists them)") }
        try book.setAddress(args[0], nil)
        out("\(args[0]) is no longer a peer; the contact stays (`datanet id rm \(args[0])` forgets it)")
    default:
        throw CLIError.usage("peer subcommands are add, ls and rm, not '\(terminalSafe(p.positionals[0]))'")
    }
    return 0
}

/// When peer `name`, pinned to `pinned`, presents `presented`: a line saying which Datanet's
/// log hands its sequencer over from the one key to the other — a Datanet held here, synced
/// from that peer, with a checkpoint the pinned key signed — which is what lets the pin move
/// without `--repin`; nil when no log here proves it.
func handoffNote(_ name: String, from pinned: PublicKey, to presented: PublicKey) -> String? {
    let served = Set(((try? ContactBook(storeDirectory: storeDir).contact(named: name))??.held ?? [:]).keys.compactMap { DatanetID(hex: $0) })
    guard !served.isEmpty, let ledger = try? openLedgerForReading(),
          let (d, leaf) = try? ledger.sequencerHandoff(from: pinned, to: presented, among: served) else { return nil }
    let datanet = (try? ledger.reader.state(of: d))?.policy.name ?? d.hex
    return "note: \(name) now presents \(presented), not the pinned \(pinned): leaf \(leaf) of \(terminalSafe(datanet))'s log hands its sequencer over to that key; re-pinned"
}

/// The Datanet identity a peer proves in a handshake, presenting this store's identity.
func handshakeKey(host: String, port: UInt16) throws -> PublicKey {
    let me = try signer()
    let socket = try TCPSocket.connect(host: host, port: port, timeout: 10)
    return try PeerConnection.open(socket, role: .initiator, identity: me.signingKey, now: UInt64(Date().timeIntervalSince1970)).peer
}
