import DatanetCrypto
import Foundation
import Glibc
import Synchronization

/// Reads, chunks and hashes a file on a second thread while the caller stores the chunks, so
/// FastCDC + SHA-256 on one core overlap the copy into LMDB and the commits' fsyncs on the other.
///
/// The producer fills a ring of slots; every chunk lies wholly inside its slot (a tail shorter
/// than the largest chunk is carried to the start of the next slot), so the consumer can copy a
/// chunk straight from the slot into the map. A slot is reused only after the consumer hands it
/// back. `close()` stops the producer and waits for it; always call it (it is idempotent).
package final class ChunkPipeline: @unchecked Sendable {
    /// One filled slot: its buffer and the chunks cut from it.
    package struct Slot {
        package let buffer: UnsafeMutableRawBufferPointer
        package var chunks: [(start: Int, length: Int, offset: UInt64, id: ObjectID)] = []
        package var error: Error?
        package var end = false
    }

    static let slotCount = 3
    static let slotSize = 4 << 20
    // Raw storage, not an Array: producer and consumer touch different slots at the same time,
    // and the semaphores order each slot's write before its read.
    private let slots: UnsafeMutablePointer<Slot>
    private let filled = DispatchSemaphore(value: 0)
    // Starts at 0 and is signalled once per slot: libdispatch traps when a semaphore is freed
    // with a value below the one it was created with.
    private let free = DispatchSemaphore(value: 0)
    private let done = DispatchSemaphore(value: 0)
    private let cancelled = Atomic<Bool>(false)
    private var next = 0
    private var closed = false
    private let fd: Int32
    private let path: String

    /// Opens `path` and starts the producer thread.
    package init(path: [UInt8]) throws {
        self.path = display(path)
        fd = withCPath(path) { open($0, O_RDONLY | O_CLOEXEC) }
        guard fd >= 0 else { throw StoreError.io(path: display(path), operation: "open", errno: errno) }
        slots = .allocate(capacity: Self.slotCount)
        for i in 0..<Self.slotCount {
            (slots + i).initialize(to: Slot(buffer: .allocate(byteCount: Self.slotSize, alignment: 64)))
        }
        for _ in 0..<Self.slotCount { free.signal() }
        Thread { [self] in produce() }.start()
    }

    deinit {
        close()
        for i in 0..<Self.slotCount { slots[i].buffer.deallocate() }
        slots.deinitialize(count: Self.slotCount)
        slots.deallocate()
    }

    /// The next filled slot (in order); hand it back with `release()` before asking again.
    package func nextSlot() -> Slot {
        filled.wait()
        return slots[next]
    }

    /// Returns the slot from `nextSlot()` to the producer.
    package func release() {
        next = (next + 1) % Self.slotCount
        free.signal()
    }

    /// Stops the producer and waits until it has exited.
    package func close() {
        guard !closed else { return }
        closed = true
        cancelled.store(true, ordering: .relaxed)
        free.signal() // wake a producer waiting for a slot
        done.wait()
        Glibc.close(fd)
    }

    private func produce() {
        var hasher = SHA256.Hasher()
        var offset: UInt64 = 0 // file offset of the first byte not yet cut
        var index = 0
        defer { done.signal() }
        while true {
            free.wait()
            if cancelled.load(ordering: .relaxed) { return }
            var slot = slots[index]
            slot.chunks.removeAll(keepingCapacity: true)
            let buf = slot.buffer
            // Each slot starts at the first uncut byte: a tail too short to cut is read again
            // (from the page cache) into the next slot rather than copied between slots.
            var end = 0
            var eof = false
            while end < buf.count {
                let n = pread(fd, buf.baseAddress! + end, buf.count - end, off_t(offset) + off_t(end))
                if n < 0 {
                    if errno == EINTR { continue }
                    slot.error = StoreError.io(path: path, operation: "read", errno: errno)
                    break
                }
                if n == 0 { eof = true; break }
                end += n
            }
            var start = 0
            if slot.error == nil {
                while end - start > 0 && (eof || end - start >= FastCDC.maxSize) {
                    let chunk = UnsafeRawBufferPointer(rebasing: buf[start..<end])
                    let n = FastCDC.cut(chunk)
                    hasher.update(UnsafeRawBufferPointer(rebasing: chunk[0..<n]))
                    slot.chunks.append((start, n, offset, ObjectID(hasher.finalize())))
                    start += n
                    offset += UInt64(n)
                }
            }
            slot.end = eof || slot.error != nil
            slots[index] = slot
            filled.signal()
            if slot.end { return }
            index = (index + 1) % Self.slotCount
        }
    }
}
