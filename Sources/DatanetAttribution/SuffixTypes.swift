import DatanetCrypto
import Glibc

extension SuffixSorter {
    /// Sets the S-type bits of `types` and, when given, each symbol's count in `counts`, on all
    /// cores. Parts are whole words of types; a part learns the type just past its end by
    /// reading on over the run of equal symbols there (the last suffix is L-type: it is larger
    /// than the virtual sentinel after it).
    static func classify<S: Symbols>(_ s: S, n: Int, types: Types, counts: UnsafeMutablePointer<Int32>?, k: Int) {
        // Per-part counts cost k a part: worth it for small alphabets only.
        let partCounts = counts != nil && k <= 1 << 16
        let threads = min(Parallel.cores, max(1, types.count / (inductionBlock / 64)))
        let local = UnsafeMutablePointer<Int32>.allocate(capacity: partCounts ? threads * k : 0)
        defer { local.deallocate() }
        Parallel.forEachPart(of: threads, grain: 1) { lanes in
            for t in lanes {
                let words = (types.count * t / threads)..<(types.count * (t + 1) / threads)
                let lo = words.lowerBound * 64, hi = min(n, words.upperBound * 64)
                if partCounts { (local + t * k).initialize(repeating: 0, count: k) }
                guard lo < hi else { continue }
                var j = hi
                while j + 1 < n && s[j] == s[j + 1] { j += 1 }
                var nextS = j + 1 < n && s[j] < s[j + 1]
                for w in words.reversed() {
                    var word: UInt64 = 0
                    var i = min(hi, w * 64 + 64) - 1
                    if i == n - 1 { nextS = false; i -= 1 }
                    var after = i + 1 < n ? s[i + 1] : 0
                    while i >= w * 64 {
                        let a = s[i]
                        nextS = a < after || (a == after && nextS)
                        if nextS { word |= 1 << UInt64(i & 63) }
                        after = a
                        i -= 1
                    }
                    types.words[w] = word
                }
                if partCounts {
                    let mine = local + t * k
                    for i in lo..<hi { mine[s[i]] += 1 }
                }
            }
        }
        guard let counts else { return }
        counts.initialize(repeating: 0, count: k)
        if partCounts {
            for t in 0..<threads { for c in 0..<k { counts[c] += local[t * k + c] } }
        } else {
            for i in 0..<n { counts[s[i]] += 1 }
        }
    }

    /// Places every LMS suffix at the end of its bucket (`ends`, one past each symbol's last
    /// slot, which this may move), in decreasing position within a bucket; for small alphabets
    /// on all cores: each part counts its LMS suffixes per symbol, then places them below the
    /// parts after it. Returns how many.
    static func placeLMS<S: Symbols>(_ s: S, types: Types, k: Int, sa: UnsafeMutablePointer<Int32>, ends: UnsafeMutablePointer<Int32>) -> Int {
        let threads = k <= 1 << 12 ? min(Parallel.cores, max(1, types.count / (inductionBlock / 64))) : 1
        var placed = 0
        guard threads > 1 else {
            types.forEachLMS { p in
                let c = s[p]
                ends[c] -= 1
                sa[Int(ends[c])] = Int32(p)
                placed += 1
            }
            return placed
        }
        let offsets = UnsafeMutablePointer<Int32>.allocate(capacity: threads * k)
        defer { offsets.deallocate() }
        offsets.initialize(repeating: 0, count: threads * k)
        @inline(__always) func words(_ t: Int) -> Range<Int> { (types.count * t / threads)..<(types.count * (t + 1) / threads) }
        Parallel.forEachPart(of: threads, grain: 1) { lanes in
            for t in lanes { types.forEachLMS(words: words(t)) { p in offsets[t * k + s[p]] += 1 } }
        }
        // Part t's offsets: its bucket end less what the parts after it place there.
        for c in 0..<k {
            var end = ends[c]
            for t in (0..<threads).reversed() {
                let count = offsets[t * k + c]
                offsets[t * k + c] = end
                end -= count
                placed += Int(count)
            }
        }
        Parallel.forEachPart(of: threads, grain: 1) { lanes in
            for t in lanes {
                let mine = offsets + t * k
                types.forEachLMS(words: words(t)) { p in
                    let c = s[p]
                    mine[c] -= 1
                    sa[Int(mine[c])] = Int32(p)
                }
            }
        }
        return placed
    }
}

extension SuffixSorter {
    /// Moves the entries of a[0..<n] that `keep` selects, as `map` gives them, to the front in
    /// order, on all cores (each part to its own start, then the parts together); returns how
    /// many.
    @inline(__always)
    static func compact(_ a: UnsafeMutablePointer<Int32>, count n: Int, keep: (Int32) -> Bool, map: (Int32) -> Int32) -> Int {
        let threads = min(Parallel.cores, max(1, n / inductionBlock), 8)
        var kept = (0, 0, 0, 0, 0, 0, 0, 0)
        withUnsafeMutableBytes(of: &kept) { raw in
            let kept = raw.bindMemory(to: Int.self)
            Parallel.forEachPart(of: threads, grain: 1) { lanes in
                for t in lanes {
                    let lo = n * t / threads, hi = n * (t + 1) / threads
                    var j = lo
                    for r in lo..<hi where keep(a[r]) {
                        a[j] = map(a[r])
                        j += 1
                    }
                    kept[t] = j - lo
                }
            }
            var total = kept[0]
            for t in 1..<threads {
                memmove(a + total, a + n * t / threads, kept[t] * MemoryLayout<Int32>.stride)
                total += kept[t]
            }
            kept[0] = total
        }
        return kept.0
    }
}
