import Glibc

/// A failed socket call, with the host and port it was for and the system's reason.
public struct SocketError: Error, Equatable, CustomStringConvertible {
    public let operation: String
    public let address: String
    public let errno: Int32
    public var description: String {
        errno == 0 ? "\(operation) \(address): connection closed by the peer"
                   : "\(operation) \(address): \(String(cString: strerror(errno)))"
    }
}

/// A blocking TCP connection (IPv4), one thread per connection: sends never raise SIGPIPE
/// (MSG_NOSIGNAL), reads and writes time out after `timeout` seconds so a silent peer cannot
/// hold a thread forever.
public final class TCPSocket: @unchecked Sendable {
    let fd: Int32
    public let address: String
    /// Bytes written to and read from the connection (a session's bytes on the wire).
    public private(set) var bytesSent: UInt64 = 0, bytesReceived: UInt64 = 0

    /// Seconds each read and write may wait (`setTimeout` changes it for a phase, such as a
    /// handshake with a shorter deadline).
    public let timeout: Int

    init(fd: Int32, address: String, timeout: Int) {
        (self.fd, self.address, self.timeout) = (fd, address, timeout)
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(4))
        setTimeout(timeout)
    }

    /// Makes each read and write wait at most `seconds`.
    public func setTimeout(_ seconds: Int) {
        var tv = timeval(tv_sec: seconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    /// Connects to `host:port` (a dotted IPv4 address or a name).
    public static func connect(host: String, port: UInt16, timeout: Int = 30) throws(SocketError) -> TCPSocket {
        let address = "\(host):\(port)"
        var addr = try TCPListener.address(host, port)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw SocketError(operation: "socket for", address: address, errno: Glibc.errno) }
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard rc == 0 else {
            let e = Glibc.errno
            close(fd)
            throw SocketError(operation: "connect to", address: address, errno: e)
        }
        return TCPSocket(fd: fd, address: address, timeout: timeout)
    }

    /// Writes all of `bytes`.
    public func send(_ bytes: [UInt8]) throws(SocketError) {
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + off, bytes.count - off, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if Glibc.errno == EINTR { continue }
                throw SocketError(operation: "send to", address: address, errno: Self.timedOut(Glibc.errno))
            }
            off += n
            bytesSent += UInt64(n)
        }
    }

    /// Up to `max` bytes as they arrive; empty when the peer closed the connection.
    public func receive(max: Int = 1 << 16) throws(SocketError) -> [UInt8] {
        var failure: SocketError?
        // Received straight into the array's storage: neither zeroed first nor copied after.
        let bytes = [UInt8](unsafeUninitializedCapacity: Swift.max(1, max)) { b, count in
            do throws(SocketError) { count = try receive(into: UnsafeMutableRawBufferPointer(rebasing: UnsafeMutableRawBufferPointer(b)[0..<max])) } catch {
                (failure, count) = (error, 0)
            }
        }
        if let failure { throw failure }
        return bytes
    }

    /// Receives up to `room.count` bytes into `room` as they arrive; returns how many, 0 when
    /// the peer closed the connection.
    public func receive(into room: UnsafeMutableRawBufferPointer) throws(SocketError) -> Int {
        while true {
            let n = recv(fd, room.baseAddress, room.count, 0)
            if n >= 0 {
                bytesReceived += UInt64(n)
                return n
            }
            if Glibc.errno == EINTR { continue }
            throw SocketError(operation: "receive from", address: address, errno: Self.timedOut(Glibc.errno))
        }
    }

    /// Whether bytes (or the end of the stream) can be read now without waiting.
    public var isReadable: Bool {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return Glibc.poll(&p, 1, 0) == 1
    }

    /// A read or write that waited its timeout out fails with EAGAIN: said as a timeout.
    static func timedOut(_ e: Int32) -> Int32 { e == EAGAIN || e == EWOULDBLOCK ? ETIMEDOUT : e }

    /// Ends this side's writing; the peer reads the end of the stream.
    public func shutdownWrite() { shutdown(fd, Int32(SHUT_WR)) }
}

/// A listening TCP socket.
public final class TCPListener: @unchecked Sendable {
    let fd: Int32
    /// The port bound (the one the system chose when 0 was asked).
    public let port: UInt16
    public let host: String

    public init(host: String = "127.0.0.1", port: UInt16) throws(SocketError) {
        let address = "\(host):\(port)"
        var addr = try Self.address(host, port)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw SocketError(operation: "socket for", address: address, errno: Glibc.errno) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(4))
        let bound = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard bound == 0, Glibc.listen(fd, 128) == 0 else {
            let e = Glibc.errno
            close(fd)
            throw SocketError(operation: "listen on", address: address, errno: e)
        }
        var actual = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &actual) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        (self.fd, self.host, self.port) = (fd, host, UInt16(bigEndian: actual.sin_port))
    }

    deinit { close(fd) }

    /// The next connection (blocks until one arrives).
    /// Waits up to `milliseconds` for a connection to accept; false on timeout or a signal (so a
    /// server loop can look at its stop flag between waits).
    public func waitForConnection(milliseconds: Int32) -> Bool {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return Glibc.poll(&p, 1, milliseconds) == 1
    }

    public func accept(timeout: Int = 30) throws(SocketError) -> TCPSocket {
        while true {
            var peer = sockaddr_in()
            var len = socklen_t(MemoryLayout<sockaddr_in>.size)
            let c = withUnsafeMutablePointer(to: &peer) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.accept(fd, $0, &len) } }
            if c >= 0 {
                var text = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
                inet_ntop(AF_INET, &peer.sin_addr, &text, socklen_t(INET_ADDRSTRLEN))
                let host = String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                return TCPSocket(fd: c, address: "\(host):\(UInt16(bigEndian: peer.sin_port))", timeout: timeout)
            }
            if Glibc.errno == EINTR { continue }
            throw SocketError(operation: "accept on", address: "\(host):\(port)", errno: Glibc.errno)
        }
    }

    /// A sockaddr_in for a dotted IPv4 address or a name (resolved to its first IPv4 address).
    static func address(_ host: String, _ port: UInt16) throws(SocketError) -> sockaddr_in {
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        if inet_pton(AF_INET, host, &addr.sin_addr) == 1 { return addr }
        var hints = addrinfo()
        hints.ai_family = AF_INET
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var found: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &found) == 0, let info = found, let sa = info.pointee.ai_addr else {
            throw SocketError(operation: "resolve", address: "\(host):\(port)", errno: EHOSTUNREACH)
        }
        defer { freeaddrinfo(found) }
        addr.sin_addr = sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr }
        return addr
    }
}
