// Gradcheck cases for the indexing and joining ops of autograd/ops_index.cpp, including
// repeated indices (so backward accumulation is checked), non-contiguous inputs, and the
// differentiable values of topk/sort (recorded as gather nodes).
#include "autograd/ops.h"
#include "core/creation.h"
#include "core/tensor.h"
#include "tests/autograd/gradcheck_cases.h"
#include "tests/test_util.h"

namespace tz::testing {
namespace {
Tensor ids(const std::vector<int64_t>& v, const Shape& shape = {}) { return from_vector(v, shape); }
}  // namespace

TZ_GRADCHECK_CASE(embedding, "ids [2,3] with id 4 repeated three times") {
  Tensor id = ids({4, 0, 9, 4, 4, 2}, {2, 3});
  return {[id](In x) { return embedding(x[0], id); }, {leaf({10, 5})}};
}
TZ_GRADCHECK_CASE(embedding, "non-contiguous table and ids") {
  Tensor id = non_contiguous(ids({1, 3, 1, 0}, {2, 2}));
  return {[id](In x) { return embedding(x[0], id); }, {non_contiguous(leaf({4, 3}, 2)).requires_grad_()}};
}

TZ_GRADCHECK_CASE(index_select, "dim 1 with repeated indices") {
  Tensor idx = ids({2, 0, 2, 2, 3});
  return {[idx](In x) { return index_select(x[0], 1, idx); }, {leaf({3, 4, 2})}};
}
TZ_GRADCHECK_CASE(index_select, "dim -1 of a non-contiguous input") {
  Tensor idx = ids({1, 1, 0});
  return {[idx](In x) { return index_select(x[0], -1, idx); }, {non_contiguous(leaf({3, 4}, 3)).requires_grad_()}};
}

TZ_GRADCHECK_CASE(gather, "dim 1, repeated indices, index smaller than x in dim 0") {
  Tensor idx = ids({0, 0, 3, 1, 2, 2, 2, 0}, {2, 4});
  return {[idx](In x) { return gather(x[0], 1, idx); }, {leaf({3, 4})}};
}
TZ_GRADCHECK_CASE(gather, "dim 0 of a non-contiguous input") {
  Tensor idx = ids({2, 0, 1, 1, 1, 2}, {2, 3});
  return {[idx](In x) { return gather(x[0], 0, idx); }, {non_contiguous(leaf({3, 3}, 4)).requires_grad_()}};
}
TZ_GRADCHECK_CASE(gather, "gradients flow through topk values") {
  return {[](In x) { return topk(x[0], 3, 1, true).values; }, {leaf({3, 6}, 5)}};
}
TZ_GRADCHECK_CASE(gather, "gradients flow through sort values (descending, dim 0)") {
  return {[](In x) { return sort(x[0], 0, true).values; }, {non_contiguous(leaf({5, 2}, 6)).requires_grad_()}};
}

TZ_GRADCHECK_CASE(scatter_add, "dim 1, repeated targets; gradients to x and src") {
  Tensor idx = ids({0, 2, 2, 1, 1, 1}, {2, 3});
  return {[idx](In x) { return scatter_add(x[0], 1, idx, x[1]); }, {leaf({2, 3}, 7), leaf({2, 3}, 8)}};
}
TZ_GRADCHECK_CASE(scatter_add, "index smaller than src, non-contiguous inputs") {
  Tensor idx = ids({1, 0, 1, 1}, {2, 2});
  return {[idx](In x) { return scatter_add(x[0], 0, idx, x[1]); },
          {non_contiguous(leaf({2, 3}, 9)).requires_grad_(), non_contiguous(leaf({3, 4}, 10)).requires_grad_()}};
}

TZ_GRADCHECK_CASE(cat, "three inputs along dim 1, one non-contiguous") {
  return {[](In x) {
            return cat({x[0], x[1], x[2]}, 1);
          },
          {leaf({2, 3}, 11), non_contiguous(leaf({2, 1}, 12)).requires_grad_(), leaf({2, 2}, 13)}};
}
TZ_GRADCHECK_CASE(cat, "dim -1 with the same input twice") {
  return {[](In x) { return cat({x[0], x[0]}, -1); }, {leaf({3, 2}, 14)}};
}

TZ_GRADCHECK_CASE(conv1d_causal, "K = 3, T = 5, with bias, non-contiguous x") {
  Tensor xin = leaf({2, 3, 5}, 15).detach().transpose(1, 2).requires_grad_();  // [B, T, C] view
  return {[](In x) { return conv1d_causal(x[0], x[1], x[2]); }, {xin, leaf({3, 3}, 16), leaf({3}, 17)}};
}
TZ_GRADCHECK_CASE(conv1d_causal, "K = 4 > T = 2, no bias") {
  return {[](In x) { return conv1d_causal(x[0], x[1]); }, {leaf({2, 2, 3}, 18), leaf({3, 4}, 19)}};
}
TZ_GRADCHECK_CASE(conv1d_causal, "K = 1 (a per-channel scale)") {
  return {[](In x) { return conv1d_causal(x[0], x[1], x[2]); }, {leaf({1, 4, 2}, 20), leaf({2, 1}, 21), leaf({2}, 22)}};
}

}  // namespace tz::testing

namespace tz::testing {

TEST_CASE("topk/sort/argsort: indices are i64, values are recorded as gather") {
  Tensor x = tensor({3, 1, 4, 1, 5, 9, 2, 6}, {2, 4}, DType::f64).requires_grad_();
  ValuesIndices t = topk(x, 2, -1, true);
  CHECK(t.indices.dtype() == DType::i64);
  CHECK(t.indices.to_vector<int64_t>() == std::vector<int64_t>{2, 0, 1, 3});
  CHECK(t.values.to_vector<double>() == std::vector<double>{4, 3, 9, 6});
  REQUIRE(t.values.grad_fn_name() != nullptr);
  CHECK(std::string(t.values.grad_fn_name()) == "gather");
  CHECK(!t.indices.requires_grad());
  // The gradient goes to the picked entries only.
  t.values.backward(ones({2, 2}, DType::f64));
  CHECK(x.grad().to_vector<double>() == std::vector<double>{1, 0, 1, 0, 0, 1, 0, 1});
  // Ties: the lower index first, also in descending order.
  Tensor tied = tensor({1, 2, 2, 1}, DType::f64);
  CHECK(argsort(tied, 0, true).to_vector<int64_t>() == std::vector<int64_t>{1, 2, 0, 3});
  CHECK(argsort(tied, 0, false).to_vector<int64_t>() == std::vector<int64_t>{0, 3, 1, 2});
  ValuesIndices s = sort(tied, 0, false);
  CHECK(!s.values.requires_grad());
  CHECK(s.values.to_vector<double>() == std::vector<double>{1, 1, 2, 2});
  {
    NoGradGuard no_grad;
    CHECK(!sort(x, 1).values.requires_grad());
  }
}

TEST_CASE("embedding through autograd: repeated ids accumulate into the table's grad") {
  Tensor w = zeros({5, 3}, DType::f64).requires_grad_();
  Tensor y = embedding(w, from_vector(std::vector<int64_t>{4, 1, 4, 4}));
  y.backward(ones({4, 3}, DType::f64));
  CHECK(w.grad().to_vector<double>() == std::vector<double>{0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 3, 3, 3});
  CHECK_THROWS_WITH_AS(embedding(w, from_vector(std::vector<int64_t>{5})),
                       doctest::Contains("id 5 out of range for a table of V = 5"), tz::Error);
}

TEST_CASE("cat through autograd: each input gets its slice of the gradient") {
  Tensor a = zeros({2, 1}, DType::f64).requires_grad_(), b = zeros({2, 2}, DType::f64).requires_grad_();
  Tensor y = cat({a, b}, 1);
  y.backward(tensor({1, 2, 3, 4, 5, 6}, {2, 3}, DType::f64));
  CHECK(a.grad().to_vector<double>() == std::vector<double>{1, 4});
  CHECK(b.grad().to_vector<double>() == std::vector<double>{2, 3, 5, 6});
  CHECK(b.grad().shape() == Shape{2, 2});
}

}  // namespace tz::testing
