import DatanetCrypto
@testable import DatanetLedger
import DatanetObjects
import DatanetRecords
@testable import DatanetSync
import Foundation
import Testing

/// Protocol version 4 (schema/protocol.md "Leaves in proven batches"): a pull's batch whose
/// content passes the server's bound comes records-only, and the client fetches that content
/// in windows after the run; a version-3 client gets it inline as before. Both end with the
/// same log tables, every content and the same near-duplicate flags.
extension SyncSessionTests {
    @Test func largeContentComesByFetchToAVersion4Client() throws {
        let server = try Node(), owner = try SigningKey()
        let d = try Self.datanet(on: server, owner: owner)
        let words = (0..<400).map { "w\($0 * 31 % 997)" }
        var near = words
        near[200] = "changed"
        var ids = [try server.contribute(d, words.joined(separator: " "), by: owner, label: "a"),
                   try server.contribute(d, near.joined(separator: " "), by: owner, label: "b")]
        for i in 0..<6 { ids.append(try server.contribute(d, "small text \(i) " + String(repeating: "x\(i) ", count: 20), by: owner, label: "s\(i)")) }
        _ = try server.ledger.sequence(d, key: owner)
        let listener = try TCPListener(port: 0)
        // Content past 1 KiB a batch goes by fetch: the two long texts (2.3 KiB each) do.
        let served = Self.serve(server, listener, sessions: 2, inlineContent: 1_024)

        func clone(offering versions: ClosedRange<UInt64>) throws -> (Node, DatanetExchange) {
            let node = try Node()
            let c = try Self.connect(node, listener, offering: versions)
            defer { try? c.bye() }
            let listed = try #require(try c.list().first { $0.id == d })
            return (node, try c.exchange(d, peerSize: listed.size, in: node.ledger, push: false))
        }
        let (v4, x4) = try clone(offering: 3...4)
        let (v3, x3) = try clone(offering: 3...3)
        #expect(try served.wait() == ["bye", "bye"])

        let pulled4 = try #require(x4.pulled), pulled3 = try #require(x3.pulled)
        #expect(!pulled4.summary.withoutContent.isEmpty && pulled3.summary.withoutContent.isEmpty)
        let fetched = try #require(x4.fetched)
        #expect(x3.fetched == nil && x4.fetchError == nil && fetched.failed.isEmpty && fetched.objects > 0)
        for node in [v4, v3] {
            for id in ids {
                let c = try #require(try node.ledger.reader.contribution(id, in: d))
                #expect(try node.ledger.reader.holdsObject(c.content, kind: .blob))
            }
            Self.expectSame(try server.tables(d), try node.tables(d), "after a clone")
            #expect(try node.ledger.reader.nearDuplicate(of: ids[1]) == ids[0])
        }
        let flags4 = try ids.map { try v4.ledger.reader.nearDuplicate(of: $0) }, flags3 = try ids.map { try v3.ledger.reader.nearDuplicate(of: $0) }
        #expect(flags4 == flags3)
    }

    /// A relay that synced records-only serves leaves whose content it lacks: a version-4 clone
    /// from it gets the log, is told the content could not be fetched, and the session goes on
    /// to its end (nothing thrown, the log kept, nothing of the missing content stored).
    @Test func contentThePeerLacksIsReportedAndTheSyncGoesOn() throws {
        let origin = try Node(), relay = try Node(), owner = try SigningKey()
        let d = try Self.datanet(on: origin, owner: owner)
        let ids = try (0..<2).map { i in try origin.contribute(d, (0..<400).map { "w\($0 * 7 + i)" }.joined(separator: " "), by: owner, label: "t\(i)") }
        _ = try origin.ledger.sequence(d, key: owner)
        let l1 = try TCPListener(port: 0), l2 = try TCPListener(port: 0)
        let servedOrigin = Self.serve(origin, l1, sessions: 1)
        let r = try Self.connect(relay, l1)
        _ = try r.pull(d, since: 0, recordsOnly: true, into: relay.ledger)
        try r.bye()
        #expect(try servedOrigin.wait() == ["bye"])

        let servedRelay = Self.serve(relay, l2, sessions: 1, inlineContent: 1_024)
        let client = try Node()
        let c = try Self.connect(client, l2)
        let listed = try #require(try c.list().first { $0.id == d })
        let x = try c.exchange(d, peerSize: listed.size, in: client.ledger, push: false)
        try c.bye()
        #expect(try servedRelay.wait() == ["bye"])
        let error = try #require(x.fetchError)
        #expect(error.contains("2 contribution(s) could not be fetched"))
        Self.expectSame(try relay.tables(d), try client.tables(d), "after a clone from a relay without content")
        for id in ids {
            let content = try #require(try client.ledger.reader.contribution(id, in: d)).content
            #expect(try !client.ledger.reader.holdsObject(content, kind: .blob))
        }
    }
}
