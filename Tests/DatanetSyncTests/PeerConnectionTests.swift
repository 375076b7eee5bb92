import DatanetCrypto
@testable import DatanetSync
import DatanetTestSupport
import Dispatch
import Glibc
import Testing

/// Peers over real TCP sockets on loopback: the handshake, application messages both ways,
/// and a hostile or vanishing peer ending a connection with an error, never a crash.
@Suite struct PeerConnectionTests {
    static let now: UInt64 = 1_800_000_000

    @Test func peersExchangeMessagesOverTCP() throws {
        let server = try SigningKey(), client = try SigningKey()
        let listener = try TCPListener(port: 0)
        let served = Parallel.start { () throws -> (PublicKey, Int) in
            let c = try PeerConnection.open(try listener.accept(), role: .responder, identity: server, now: Self.now)
            var echoed = 0
            while true {
                let m = try c.receive()
                if m == Array("bye".utf8) { break }
                try c.send(Array(m.reversed()))
                echoed += 1
            }
            return (c.peer, echoed)
        }
        let c = try PeerConnection.open(try TCPSocket.connect(host: "127.0.0.1", port: listener.port), role: .initiator, identity: client, now: Self.now)
        #expect(c.peer == server.publicKey)
        var rng = SplitMix64(seed: 3)
        let messages = [[], [1], rng.bytes(70_000), rng.bytes(1 << 18)]
        // Sent back to back before any answer is read: the peer queues them in order.
        for m in messages { try c.send(m) }
        for m in messages { #expect(try c.receive() == Array(m.reversed())) }
        try c.send(Array("bye".utf8))
        let (seen, echoed) = try served.wait()
        #expect(seen == client.publicKey && echoed == messages.count)
    }

    /// Garbage instead of a handshake, a peer that hangs up mid-handshake, and one that sends
    /// a frame length and then nothing (the read times out): each an error for the server.
    @Test func hostilePeersEndTheConnection() throws {
        let server = try SigningKey()
        let listener = try TCPListener(port: 0)
        var rng = SplitMix64(seed: 11)
        let behaviours: [(TCPSocket) throws -> Void] = [
            { s in try s.send(rng.bytes(200)); s.shutdownWrite() },
            { s in s.shutdownWrite() },
            { s in try s.send([0xff, 0xff, 1, 2, 3]) },
        ]
        for (k, behave) in behaviours.enumerated() {
            let served = Parallel.start { () throws -> String in
                do {
                    _ = try PeerConnection.open(try listener.accept(timeout: 1), role: .responder, identity: server, now: Self.now)
                    return "opened"
                } catch { return "\(error)" }
            }
            let s = try TCPSocket.connect(host: "127.0.0.1", port: listener.port)
            try behave(s)
            let outcome = try served.wait()
            #expect(outcome != "opened", "behaviour \(k)")
            #expect(!outcome.isEmpty)
        }
    }

    /// A peer that trickles the handshake a byte at a time, each within the socket's read
    /// timeout, still meets the handshake's deadline: the server ends it after about that long.
    @Test func aTricklingHandshakeMeetsItsDeadline() throws {
        let server = try SigningKey()
        let listener = try TCPListener(port: 0)
        let served = Parallel.start { () throws -> (String, UInt64) in
            let start = DispatchTime.now().uptimeNanoseconds
            do {
                _ = try PeerConnection.open(try listener.accept(timeout: 5), role: .responder, identity: server, now: Self.now, deadline: 1)
                return ("opened", 0)
            } catch { return ("\(error)", (DispatchTime.now().uptimeNanoseconds - start) / 1_000_000) }
        }
        let s = try TCPSocket.connect(host: "127.0.0.1", port: listener.port)
        // A frame of 32 bytes announced (the first handshake message), its bytes sent slowly.
        try s.send([0x00, 0x20])
        for _ in 0..<30 {
            guard (try? s.send([0])) != nil else { break }
            usleep(100_000)
        }
        let (outcome, millis) = try served.wait()
        #expect(outcome.contains("finish the handshake in 1 s") || outcome.contains("timed out"), "\(outcome)")
        #expect(millis >= 900 && millis < 2_500, "ended after \(millis) ms")
    }

    @Test func connectingToNothingIsAClearError() throws {
        let port = try TCPListener(port: 0).port  // bound, then closed again: nothing listens
        #expect(performing: { _ = try TCPSocket.connect(host: "127.0.0.1", port: port) }, throws: { error in
            guard let e = error as? SocketError else { return false }
            return e.errno == ECONNREFUSED && "\(e)".contains("127.0.0.1:\(port)")
        })
    }
}
