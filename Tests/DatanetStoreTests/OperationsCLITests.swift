import DatanetCrypto
import Foundation
import Glibc
import Testing

/// The ledger's operations as the CLI runs them: every refusal of `contribute`, `review`,
/// `withdraw`, `takedown` and `policy` leaves the store byte for byte as it was (no content,
/// sidecar or record of a refused contribution stays behind).
@Suite struct OperationsCLITests {
    typealias Session = LedgerCLITests.Session

    @Test func refusedOperationsLeaveTheStoreAsItWas() throws {
        let s = Session()
        try s.ok(["init"])
        for n in ["owner", "alice", "bob"] { try s.ok(["id", "new", n]) }
        try s.ok(["--as", "owner", "create", "birds", "--allow", "alice", "--curator", "owner"])
        writeFile(s.dir.file("song.txt"), Array("a song of the dawn, long enough to be text".utf8))
        let song = s.dir.file("song.txt")
        // Each refused after the files were read but before anything was stored.
        try s.refused(["--as", "bob", "contribute", "birds", song], "may not contribute")
        try s.refused(["--as", "alice", "contribute", "birds", song, "--media-type", String(repeating: "x", count: 300)],
                      "the media type takes 300 bytes; at most 255")
        try s.refused(["--as", "alice", "contribute", "birds", song, "--license", String(repeating: "L", count: 257)],
                      "the license takes 257 bytes; at most 256")
        try s.refused(["--as", "alice", "contribute", "birds", song, "--label", "two\nlines"], "control character U+000A")
        try s.refused(["--as", "alice", "contribute", "birds", song, "--meta", "k=" + String(repeating: "m", count: 70_000)],
                      "the label and metadata takes")
        try s.refused(["--as", "alice", "contribute", "nosuch", song], "no Datanet nosuch")
        // Nothing was added by any of them: no object, no record.
        #expect(!(try s.ok(["ls"])).contains("song.txt"))
        #expect(try s.pending("birds").isEmpty)
        // A contribution that is accepted, then the refusals of the other operations.
        let id = String(try s.ok(["--as", "alice", "contribute", "birds", song]).prefix(64))
        try s.refused(["--as", "bob", "review", "birds", id, "accept"], "is not a curator of birds")
        try s.refused(["--as", "owner", "review", "birds", id, "accept", "--reason", "a\u{7}b"], "control character U+0007")
        try s.refused(["--as", "owner", "policy", "birds", "quorum", "2"], "the change would leave quorum 2 with 1 curator(s)")
        try s.refused(["--as", "owner", "policy", "birds", "allow", "alice"], "changes nothing")
        try s.refused(["--as", "alice", "withdraw", "birds", id, "--reason", "x\u{1b}y"], "control character U+001B")
        try s.ok(["--as", "owner", "review", "birds", id, "accept"])
        #expect(try s.pending("birds").count == 2)
    }
}
