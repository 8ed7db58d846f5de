/// How a ``BinaryHeap`` orders its elements: `before(a, b)` is true when `a` must come out first.
protocol HeapOrder {
    associatedtype Element
    static func before(_ a: Element, _ b: Element) -> Bool
}

/// A binary heap over an array; the ordering is a type, so each use is specialized (no closure calls
/// in the merge loops).
struct BinaryHeap<Order: HeapOrder> {
    private var items: [Order.Element] = []

    var isEmpty: Bool { items.isEmpty }

    mutating func push(_ value: Order.Element) {
        items.append(value)
        var k = items.count - 1
        while k > 0 {
            let parent = (k - 1) / 2
            if !Order.before(items[k], items[parent]) { break }
            items.swapAt(parent, k)
            k = parent
        }
    }

    mutating func pop() -> Order.Element? {
        guard let first = items.first else { return nil }
        let last = items.removeLast()
        if items.isEmpty { return first }
        items[0] = last
        var k = 0
        while true {
            let l = 2 * k + 1, r = l + 1
            var best = k
            if l < items.count && Order.before(items[l], items[best]) { best = l }
            if r < items.count && Order.before(items[r], items[best]) { best = r }
            if best == k { break }
            items.swapAt(best, k)
            k = best
        }
        return first
    }
}
