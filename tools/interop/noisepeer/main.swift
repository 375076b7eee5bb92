// One side of a Noise_XX_25519_ChaChaPoly_SHA256 session over standard input and output, for
// tools/interop/noise: messages framed as the Noise specification frames them on a stream
// (a 2-byte big-endian length, then the message). The exchange both sides follow: handshake
// payloads "hs-0", "hs-1", "hs-2"; then N transport round trips, the initiator sending
// "ping K" (the last one padded to 65,000 bytes) and the responder answering "pong K" alike.
// Prints "remote=<hex> hash=<hex>" on standard error when done; exits 1 on any failure.
//   noise-peer initiator|responder STATIC-PRIVATE-HEX PROLOGUE N
import DatanetCrypto
import DatanetSync
import Glibc

func printError(_ line: String) {
    let bytes = Array((line + "\n").utf8)
    _ = bytes.withUnsafeBytes { write(2, $0.baseAddress!, $0.count) }
}

func fail(_ why: String) -> Never {
    printError("noise-peer: \(why)")
    exit(1)
}

func readExactly(_ n: Int) -> [UInt8] {
    var out = [UInt8](repeating: 0, count: n)
    var got = 0
    while got < n {
        let r = out.withUnsafeMutableBytes { read(0, $0.baseAddress! + got, n - got) }
        if r <= 0 { fail("standard input ended after \(got) of \(n) bytes") }
        got += r
    }
    return out
}

func receive() -> [UInt8] {
    let head = readExactly(2)
    return readExactly(Int(head[0]) << 8 | Int(head[1]))
}

func send(_ message: [UInt8]) {
    let framed = [UInt8(message.count >> 8), UInt8(message.count & 0xff)] + message
    var off = 0
    while off < framed.count {
        let w = framed.withUnsafeBytes { write(1, $0.baseAddress! + off, framed.count - off) }
        if w <= 0 { fail("standard output closed") }
        off += w
    }
}

func payload(_ word: String, _ k: Int, of n: Int) -> [UInt8] {
    let text = Array("\(word) \(k)".utf8)
    return k == n - 1 ? text + [UInt8](repeating: UInt8(ascii: "x"), count: 65000 - text.count) : text
}

let args = CommandLine.arguments
guard args.count == 5, let role = ["initiator": NoiseHandshake.Role.initiator, "responder": .responder][args[1]],
      let raw = Hex.decode(args[2]), let n = Int(args[4]), n > 0 else {
    fail("usage: noise-peer initiator|responder STATIC-PRIVATE-HEX PROLOGUE N")
}
do {
    var hs = NoiseHandshake(role: role, staticKey: try X25519PrivateKey(raw: raw), prologue: Array(args[3].utf8))
    for step in 0..<3 {
        let expected = Array("hs-\(step)".utf8)
        if hs.isMyTurn {
            send(try hs.writeMessage(expected))
        } else if try hs.readMessage(receive()) != expected {
            fail("handshake payload \(step) differs")
        }
    }
    var (out, into) = try hs.transport()
    for k in 0..<n {
        if role == .initiator {
            send(try out.encrypt(payload("ping", k, of: n)))
            guard try into.decrypt(receive()) == payload("pong", k, of: n) else { fail("pong \(k) differs") }
        } else {
            guard try into.decrypt(receive()) == payload("ping", k, of: n) else { fail("ping \(k) differs") }
            send(try out.encrypt(payload("pong", k, of: n)))
        }
    }
    printError("remote=\(Hex.encode(hs.remoteStatic ?? [])) hash=\(Hex.encode(hs.handshakeHash))")
} catch {
    fail("\(error)")
}
