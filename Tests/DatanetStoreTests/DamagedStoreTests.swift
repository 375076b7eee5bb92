import DatanetCrypto
import DatanetObjects
import DatanetStore
import Foundation
import Glibc
import Testing

/// A damaged store never traps: in copies of a real store, the values of one table at a time
/// are cut short, extended or bit-flipped (all of them, so whichever a command reads is bad), and every command that reads the store is run on it. None may
/// be killed by a signal; one that fails says so on one line; a store-level or ledger-level
/// check (`fsck`) names the damaged table when the damage is to a value it checks.
@Suite struct DamagedStoreTests {
    typealias Session = LedgerCLITests.Session

    /// A store with objects, a Datanet with intakes, a decision, a tombstone, a pending
    /// proposal, promises, a pin and checkpoints.
    static func store() throws -> (Session, accepted: String, receipt: String) {
        let s = Session()
        try s.ok(["init"])
        for n in ["owner", "alice"] { try s.ok(["id", "new", n]) }
        try s.ok(["--as", "owner", "create", "birds", "--curator", "owner"])
        var ids = [String]()
        for (i, text) in ["a song of the dawn", "a song of the dusk", "a song of the night"].enumerated() {
            writeFile(s.dir.file("s\(i).txt"), Array(text.utf8))
            let out = try s.ok(["--as", "alice", "contribute", "birds", s.dir.file("s\(i).txt"), "--label", "song \(i)"])
            ids.append(String(out.prefix(64)))
            if i == 1 { try s.ok(["sequence", "birds"]) }
        }
        try s.ok(["--as", "owner", "review", "birds", ids[0], "accept"])
        try s.ok(["sequence", "birds"])
        try s.ok(["--as", "alice", "withdraw", "birds", ids[1]])
        try s.ok(["sequence", "birds"])
        writeFile(s.dir.file("s3.txt"), Array("a song of noon".utf8))
        try s.ok(["--as", "alice", "contribute", "birds", s.dir.file("s3.txt")]) // left pending
        let receipt = s.dir.file("receipt.json")
        try s.ok(["receipt", ids[0], "-o", receipt])
        let d = try #require((try s.json(["datanets"]) as? [[String: Any]])?.first?["id"] as? String)
        try s.ok(["pin", d])
        return (s, ids[0], receipt)
    }

    @Test func oneDamagedValueInEveryTable() throws {
        let (s, accepted, receipt) = try Self.store()
        let tables = try ObjectStore(directory: s.store).env.read { txn in try txn.tableNames(prefix: "") }
        #expect(tables.count >= 20, "\(tables)")
        let commands: [[String]] = [
            ["datanets"], ["pending", "birds"], ["log", "birds"], ["show", accepted], ["receipt", accepted],
            ["verify", receipt], ["audit", "birds"], ["export", "birds", "EXPORT"], ["bundle", "export", "birds", "-o", "BUNDLE"],
            ["fsck"], ["gc", "--dry-run"], ["ls"], ["stat"], ["sequence", "birds"],
        ]
        var runs = 0, failures = 0, fsckNamed = 0, damaged = 0, named = 0
        for table in tables {
            for mutation in ["truncate", "extend", "flip"] {
                let copy = TempDir("damaged")
                let store = copy.file("store")
                #expect(try runDatanet([], shellPrefix: "cp -r '\(s.store)' '\(store)' && exit 0;").status == 0)
                // Damage every entry the mutation can change (the store is small): every command
                // that reads the table meets a damaged value, whichever entry it reads.
                let changed = try ObjectStore(directory: store).env.write { txn -> Bool in
                    let t = try txn.openTable(table)
                    var entries = [([UInt8], [UInt8])]()
                    try txn.scan(t) { k, v in
                        if mutation == "extend" || !v.isEmpty { entries.append((Array(k), Array(v))) }
                        return true
                    }
                    for (k, value) in entries {
                        var v = value
                        switch mutation {
                        case "truncate": v.removeLast(max(1, v.count / 2))
                        case "extend": v.append(0x5a)
                        default: v[v.count / 2] ^= 0x10
                        }
                        try txn.put(t, k, v)
                    }
                    return !entries.isEmpty
                }
                guard changed else { continue }
                damaged += 1
                for command in commands {
                    let args = command.map { $0 == "EXPORT" ? copy.file("export") : $0 == "BUNDLE" ? copy.file("bundle") : $0 }
                    let r = try runDatanet(args, store: store)
                    runs += 1
                    #expect(!r.signaled && (0...2).contains(r.status), "\(table) \(mutation): \(args.joined(separator: " ")) ended \(r.status): \(r.stderr)")
                    #expect(!r.stderr.contains("Fatal error"), "\(table) \(mutation): \(args.joined(separator: " ")): \(r.stderr)")
                    if r.status != 0 && r.status != 2 {
                        failures += 1
                        // Refusals and damage reports are one line, unless the command prints a report of its own.
                        if !["fsck", "audit", "verify"].contains(command[0]) {
                            #expect(r.stderr.split(separator: "\n").count == 1, "\(table) \(mutation): \(args.joined(separator: " ")): \(r.stderr)")
                        }
                    }
                    // A ledger damage report names the table that was damaged (and its key).
                    if r.status == 1, r.stderr.contains("store is damaged: table '") {
                        #expect(r.stderr.contains("table '\(table)") && r.stderr.contains("key "), "\(table) \(mutation): \(args.joined(separator: " ")): \(r.stderr)")
                        named += 1
                    }
                    if command == ["fsck"], r.status == 1, r.stdout.contains(table) || r.stderr.contains(table) { fsckNamed += 1 }
                }
            }
        }
        // The damage was seen: many runs refused it, and fsck named the table in many cases.
        #expect(damaged >= 50 && runs >= 50 * commands.count, "\(damaged) damaged copies, \(runs) runs")
        #expect(failures > 100 && fsckNamed >= 30 && named >= 50, "\(failures) failing runs, fsck named the table \(fsckNamed) times, errors named it \(named) times")
    }
}
