import Foundation
import Glibc
import Testing

/// Contacts and the store's default identity: `id import|rm`, contact names, key prefixes and
/// identity files wherever a key is taken, `config identity`, and their refusals.
@Suite struct ContactsCLITests {
    typealias Session = LedgerCLITests.Session

    /// A second store holding `name`, and the public identity file it exports.
    static func stranger(_ s: Session, _ name: String) throws -> (key: String, file: String) {
        let other = s.dir.file("other-" + name)
        #expect(try runDatanet(["init"], store: other).status == 0)
        #expect(try runDatanet(["id", "new", name], store: other).status == 0)
        let exported = try runDatanet(["id", "export", name], store: other)
        let file = s.dir.file(name + ".json")
        writeFile(file, Array(exported.stdout.utf8))
        let shown = try JSONSerialization.jsonObject(with: Data(try runDatanet(["id", "show", name, "--json"], store: other).stdout.utf8)) as? [String: Any]
        return (try #require(shown?["ed25519"] as? String), file)
    }

    @Test func contactsStandInForKeys() throws {
        let s = Session()
        try s.ok(["init"])
        try s.ok(["id", "new", "owner"])
        let carol = try Self.stranger(s, "carol"), dave = try Self.stranger(s, "dave")
        #expect(try s.ok(["id", "import", carol.file]).contains("added contact carol: \(carol.key)"))
        // A bare key needs a name, and gets one; it cannot be sealed to.
        #expect(try s.run(["id", "import", dave.key]).status == 2)
        #expect(try s.ok(["id", "import", dave.key, "--name", "dave"]).contains("key only"))
        // The same key twice, a name taken by a contact or by an identity: refused, file unchanged.
        let before = fileDigest(s.store + "/contacts.json")
        try s.refused(["id", "import", carol.file, "--name", "carol2"], "is already the contact 'carol'")
        try s.refused(["id", "import", dave.file], "a contact named 'dave' already exists")
        try s.refused(["id", "import", dave.file, "--name", "owner"], "an identity named 'owner' already exists")
        #expect(fileDigest(s.store + "/contacts.json") == before)
        let listed = try #require(try s.json(["id", "ls"]) as? [[String: Any]])
        #expect(listed.map { "\($0["name"]!)/\($0["kind"]!)" } == ["owner/identity", "carol/contact", "dave/contact"])
        // Contact names, an identity file and a key prefix where keys are taken.
        try s.ok(["--as", "owner", "create", "birds", "--curator", "carol", "--curator", dave.file, "--allow", "owner", "--private", "--reader", "dave"])
        let info = try s.ok(["info", "birds"])
        #expect(info.contains("carol (\(carol.key.prefix(12)))") && info.contains("dave (\(dave.key.prefix(12)))"), "\(info)")
        try s.ok(["--as", "owner", "policy", "birds", "remove-curator", String(dave.key.prefix(6))])
        let unknown = try s.run(["--as", "owner", "policy", "birds", "allow", "0000ffff"])
        #expect(unknown.status == 2 && unknown.stderr.contains("nor a unique prefix of a key this store knows"))
        // Sealing to a contact needs its certified X25519 key.
        let bundle = s.dir.file("b.bundle")
        try s.ok(["bundle", "export", "birds", "-o", bundle, "--seal-to", "owner"])
        #expect(try s.run(["bundle", "export", "birds", "-o", bundle, "--seal-to", "dave"]).stderr.contains("imported by key alone"))
        try s.ok(["bundle", "export", "birds", "-o", bundle, "--seal-to", "carol"])
        // Export gives back the file imported; rm forgets a contact, never an identity.
        let again = try s.ok(["id", "export", "carol"])
        #expect(try JSONSerialization.jsonObject(with: Data(again.utf8)) as? NSDictionary
            == JSONSerialization.jsonObject(with: FileManager.default.contents(atPath: carol.file)!) as? NSDictionary)
        try s.refused(["id", "rm", "owner"], "is an identity of this store, not a contact")
        try s.ok(["id", "rm", "dave"])
        try s.refused(["id", "rm", "dave"], "no contact named 'dave'")
        // An identity file in upper-case hex is kept in the canonical lower case.
        var upper = try #require(try JSONSerialization.jsonObject(with: FileManager.default.contents(atPath: dave.file)!) as? [String: Any])
        for k in ["ed25519", "x25519", "x25519_signature"] { upper[k] = (upper[k] as! String).uppercased() }
        writeFile(s.dir.file("DAVE.json"), Array(try JSONSerialization.data(withJSONObject: upper)))
        #expect(try s.ok(["id", "import", s.dir.file("DAVE.json")]).contains("added contact dave: \(dave.key)"))
        // A damaged contacts file is named, one line, exit 1.
        writeFile(s.store + "/contacts.json", Array("{\"version\": 1, \"contacts\": [{\"name\": \"x\"}]}".utf8))
        let r = try s.run(["id", "ls"])
        #expect(r.status == 1 && r.stderr.contains("contacts.json: not a contacts file"), "\(r.stderr)")
    }

    @Test func defaultIdentityActsWithoutAs() throws {
        let s = Session()
        try s.ok(["init"])
        for n in ["owner", "alice"] { try s.ok(["id", "new", n]) }
        #expect(try s.run(["create", "songs"]).stderr.contains("datanet config identity NAME"))
        try s.refused(["config", "identity", "nobody"], "no identity named 'nobody'")
        #expect(try s.run(["config", "colour", "red"]).status == 2)
        #expect(try s.run(["config", "identity"]).status == 1)
        try s.ok(["config", "identity", "owner"])
        #expect(try s.ok(["config", "identity"]) == "owner\n")
        #expect(try s.ok(["id", "ls"]).contains("owner  ") && s.ok(["id", "ls"]).contains("(default)"))
        let made = try #require(try s.json(["create", "songs"]) as? [String: Any])
        let owner = try #require((try s.json(["id", "show", "owner"]) as? [String: Any])?["ed25519"] as? String)
        let info = try #require(try s.json(["info", "songs"]) as? [String: Any])
        #expect(made["name"] as? String == "songs" && (info["owner"] as? [String: Any])?["key"] as? String == owner, "\(info)")
        // --as still wins; --unset goes back to "choose one".
        writeFile(s.dir.file("a.txt"), Array("a song for the morning".utf8))
        let mine = try #require(try s.json(["--as", "alice", "contribute", "songs", s.dir.file("a.txt")]) as? [[String: Any]])
        let alice = try #require((try s.json(["id", "show", "alice"]) as? [String: Any])?["ed25519"] as? String)
        #expect((try s.json(["show", mine[0]["id"] as! String]) as? [String: Any])?["author"] as? String == alice)
        try s.ok(["config", "identity", "--unset"])
        #expect(try s.run(["create", "more"]).status == 2)
    }

    /// `max-queued-bytes` bounds what waits in the queue: a contribution past it is refused,
    /// the store unchanged, until the sequencer takes some in.
    @Test func queueBoundRefusesContributionsPastIt() throws {
        let s = Session()
        try s.ok(["init"])
        try s.ok(["id", "new", "owner"])
        try s.ok(["config", "identity", "owner"])
        try s.ok(["create", "songs"])
        let bad = try s.run(["config", "max-queued-bytes", "lots"])
        #expect(bad.status == 2 && bad.stderr.contains("byte count"), "\(bad.stderr)")
        try s.ok(["config", "max-queued-bytes", "30B"])
        #expect(try s.ok(["config", "max-queued-bytes"]) == "30B\n")
        for name in ["a", "b"] { writeFile(s.dir.file("\(name).txt"), Array("twenty bytes of \(name)!".utf8)) }
        try s.ok(["contribute", "songs", s.dir.file("a.txt")])
        try s.refused(["contribute", "songs", s.dir.file("b.txt")], "max-queued-bytes")
        try s.ok(["sequence", "songs"])
        try s.ok(["contribute", "songs", s.dir.file("b.txt")])
    }
}
