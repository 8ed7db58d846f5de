import Testing
import TensorCore

@Test func reshapeIsAView() {
    let t = Tensor(shape: [2, 3], values: [1, 2, 3, 4, 5, 6])
    let r = t.reshaped([3, -1])
    #expect(r.shape == [3, 2])
    r.data[0] = 42
    #expect(t[0, 0] == 42)
}
