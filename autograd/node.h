// The autograd graph: nodes, the per-tensor autograd state, and the engine's entry points.
//
// A tensor that requires grad and was made by an op holds a Node (its grad_fn). The node
// holds the backward closure, built in the op's forward function, and edges to the nodes
// of its inputs (or to the leaf tensors whose .grad it accumulates into). Closures capture
// only detached tensors, never the node or the output they belong to, so no shared_ptr
// cycle can form. backward() sorts the graph iteratively (no recursion: a chain of 100,000
// ops is fine), runs each closure once, then frees the closures.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace tz {

enum class OpId : uint16_t {
#define TZ_OP(name, doc) name,
#include "autograd/ops.def"
#undef TZ_OP
  count_
};
constexpr int kNumOps = int(OpId::count_);
const char* op_name(OpId op);
const char* op_doc(OpId op);

struct Node;

// Where a gradient flows: into another node, or into a leaf tensor's .grad.
struct Edge {
  std::shared_ptr<Node> node;          // set for non-leaf inputs
  std::shared_ptr<AutogradMeta> leaf;  // set for leaf inputs that require grad
  bool active() const { return node || leaf; }
};

// Given the gradient of the output, returns one gradient per input (undefined = none).
using BackwardFn = std::function<std::vector<Tensor>(const Tensor& grad_output)>;
// For a view of one input (slice, select): adds the output's gradient into the view's region
// of the input's gradient `into`, in place (`into` undefined: makes it, zeros elsewhere).
// Many slices of one tensor then cost their own sizes in backward, not the whole tensor each.
using ScatterFn = std::function<void(Tensor& into, const Tensor& grad_output)>;

struct Node {
  OpId op;
  BackwardFn backward;
  ScatterFn scatter;  // set by view ops of one input; the engine then uses it, not backward
  std::vector<Edge> inputs;
  Shape out_shape;
  DType out_dtype = DType::f32;
  std::weak_ptr<AutogradMeta> retained;  // the output's meta, when retain_grad() was called
  ~Node();                               // releases long chains iteratively
};

struct AutogradMeta {
  bool requires_grad = false;
  std::shared_ptr<Node> grad_fn;  // null for leaves
  Tensor grad;
  bool retain = false;
};

// True while gradients are being recorded (false inside a NoGradGuard or during backward).
bool grad_enabled();
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool prev_;
};

// Whether an op with these inputs must be recorded.
bool any_requires_grad(std::initializer_list<const Tensor*> inputs);
bool any_requires_grad(const std::vector<Tensor>& inputs);

// Attaches a node for `op` to `out` when grad mode is on and an input requires grad; the
// closure receives the output gradient and returns one gradient per input, in order.
// Gradients of inputs that do not require grad are ignored (return Tensor() for them).
void make_node(OpId op, Tensor& out, const std::vector<Tensor>& inputs, BackwardFn backward);
// Gives out's node (if make_node recorded one) the in-place form of its one input's gradient.
void set_scatter(Tensor& out, ScatterFn scatter);

// While one is alive, backward on this thread calls `fn(leaf)` as soon as a leaf's gradient
// is final (every edge of the graph into it has delivered), before the sweep goes on. A
// leaf reached only through nodes that received no gradient is not reported. Data-parallel
// training starts reducing a bucket of gradients here (train/distributed.h).
class LeafGradHook {
 public:
  explicit LeafGradHook(std::function<void(const AutogradMeta* leaf)> fn);
  ~LeafGradHook();
  LeafGradHook(const LeafGradHook&) = delete;
  LeafGradHook& operator=(const LeafGradHook&) = delete;

 private:
  std::function<void(const AutogradMeta*)> prev_;
};

// Reverse-mode sweep from `root`; grad_output defaults to 1 for a one-element root.
void run_backward(const Tensor& root, const Tensor& grad_output, bool retain_graph);

// Writes the graph that produced `root` as Graphviz dot (op names and shapes).
std::string to_dot(const Tensor& root);

// Every op id reachable from root's graph (tests use it to prove a case reached its op).
std::vector<OpId> graph_ops(const Tensor& root);

}  // namespace tz
