// The backward engine: grad mode, node creation, the reverse topological sweep, graph dump.
#include <algorithm>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include "autograd/node.h"
#include "autograd/ops.h"
#include "core/copy.h"
#include "core/creation.h"

namespace tz {

namespace {
thread_local bool g_grad_enabled = true;
thread_local std::function<void(const AutogradMeta*)> g_leaf_hook;

constexpr const char* kOpNames[] = {
#define TZ_OP(name, doc) #name,
#include "autograd/ops.def"
#undef TZ_OP
};
constexpr const char* kOpDocs[] = {
#define TZ_OP(name, doc) doc,
#include "autograd/ops.def"
#undef TZ_OP
};
static_assert(sizeof(kOpNames) / sizeof(kOpNames[0]) == size_t(kNumOps));
}  // namespace

const char* op_name(OpId op) { return kOpNames[int(op)]; }
const char* op_doc(OpId op) { return kOpDocs[int(op)]; }

bool grad_enabled() { return g_grad_enabled; }
NoGradGuard::NoGradGuard() : prev_(g_grad_enabled) { g_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { g_grad_enabled = prev_; }

Node::~Node() {
  // Destroying the head of a long chain would recurse once per node; instead, steal the
  // inputs of every node we are the last owner of and release them from a local stack.
  std::vector<std::shared_ptr<Node>> stack;
  for (Edge& e : inputs)
    if (e.node) stack.push_back(std::move(e.node));
  while (!stack.empty()) {
    std::shared_ptr<Node> n = std::move(stack.back());
    stack.pop_back();
    if (n.use_count() == 1) {
      for (Edge& e : n->inputs)
        if (e.node) stack.push_back(std::move(e.node));
      n->backward = nullptr;  // closures may hold tensors whose nodes are elsewhere
    }
  }
}

LeafGradHook::LeafGradHook(std::function<void(const AutogradMeta*)> fn) : prev_(std::move(g_leaf_hook)) {
  g_leaf_hook = std::move(fn);
}
LeafGradHook::~LeafGradHook() { g_leaf_hook = std::move(prev_); }

bool any_requires_grad(std::initializer_list<const Tensor*> inputs) {
  for (const Tensor* t : inputs)
    if (t->defined() && t->requires_grad()) return true;
  return false;
}

bool any_requires_grad(const std::vector<Tensor>& inputs) {
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

void make_node(OpId op, Tensor& out, const std::vector<Tensor>& inputs, BackwardFn backward) {
  if (!g_grad_enabled || !any_requires_grad(inputs)) return;
  TZ_CHECK(backward != nullptr, op_name(op), ": internal error, node without backward");
  auto node = std::make_shared<Node>();
  node->op = op;
  node->backward = std::move(backward);
  node->out_shape = out.shape();
  node->out_dtype = out.dtype();
  node->inputs.reserve(inputs.size());
  for (const Tensor& in : inputs) {
    Edge e;
    if (in.defined() && in.requires_grad()) {
      auto& meta = in.impl().autograd;
      if (meta->grad_fn)
        e.node = meta->grad_fn;
      else
        e.leaf = meta;
    }
    node->inputs.push_back(std::move(e));
  }
  auto meta = std::make_shared<AutogradMeta>();
  meta->requires_grad = true;
  meta->grad_fn = std::move(node);
  out.impl().autograd = std::move(meta);
}

void set_scatter(Tensor& out, ScatterFn scatter) {
  const auto& meta = out.impl().autograd;
  if (meta && meta->grad_fn) meta->grad_fn->scatter = std::move(scatter);
}

namespace {
// Adds g into slot (which may be undefined), without recording.
void accumulate(Tensor& slot, const Tensor& g) {
  if (!slot.defined()) {
    slot = g;
  } else {
    slot = add(slot, g);
  }
}

void check_grad_shape(const Tensor& g, const Shape& expected, const char* op) {
  TZ_CHECK(g.shape() == expected, op, ": backward produced a gradient of shape ", g.shape(), " for an input of shape ",
           expected);
}
}  // namespace

void run_backward(const Tensor& root, const Tensor& grad_output, bool retain_graph) {
  TZ_CHECK(root.requires_grad(), "backward: tensor does not require grad (shape ", root.shape(),
           "); call requires_grad_() on a leaf it depends on");
  Tensor seed = grad_output;
  if (!seed.defined()) {
    TZ_CHECK(root.numel() == 1, "backward: output of shape ", root.shape(),
             " is not a scalar; pass the output gradient explicitly");
    seed = ones(root.shape(), root.dtype());
  }
  TZ_CHECK(seed.shape() == root.shape(), "backward: gradient of shape ", seed.shape(), " for an output of shape ",
           root.shape());
  NoGradGuard no_grad;
  auto& root_meta = root.impl().autograd;
  if (!root_meta->grad_fn) {  // backward on a leaf: its gradient is the seed
    accumulate(root_meta->grad, core::contiguous(seed));
    return;
  }

  // 1. Count, for every node reachable from the root, how many edges lead into it (and into
  //    each leaf, when a hook waits for final leaf gradients).
  const std::function<void(const AutogradMeta*)> hook = g_leaf_hook;
  std::unordered_map<Node*, int> pending;
  std::unordered_map<const AutogradMeta*, int> leaf_pending;
  std::vector<Node*> stack{root_meta->grad_fn.get()};
  pending[stack.back()] = 0;
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    for (Edge& e : n->inputs) {
      if (hook && e.leaf) ++leaf_pending[e.leaf.get()];
      if (!e.node) continue;
      auto [it, fresh] = pending.try_emplace(e.node.get(), 0);
      ++it->second;
      if (fresh) stack.push_back(e.node.get());
    }
  }

  // 2. Kahn's algorithm: a node runs once all its consumers have passed their gradients.
  std::unordered_map<Node*, Tensor> grads;
  grads[root_meta->grad_fn.get()] = seed;
  // Gradient slots (of nodes and leaves) this sweep allocated and nothing else holds: the
  // only ones a view's scatter may add into in place. A slot that is another node's gradient
  // (accumulate's first assignment) or a leaf's gradient from an earlier backward is copied
  // before the first scatter.
  std::unordered_set<const void*> owned;
  auto scatter_into = [&](Tensor& slot, const void* key, const ScatterFn& scatter, const Tensor& g) {
    if (slot.defined() && !owned.count(key)) slot = core::clone(slot);
    scatter(slot, g);
    owned.insert(key);
  };
  std::vector<Node*> ready{root_meta->grad_fn.get()};
  while (!ready.empty()) {
    Node* n = ready.back();
    ready.pop_back();
    Tensor g = std::move(grads[n]);
    grads.erase(n);
    if (auto kept = n->retained.lock()) accumulate(kept->grad, g);
    TZ_CHECK(n->backward != nullptr, "backward: the graph through ", op_name(n->op),
             " was already freed; pass retain_graph=true to backward twice");
    if (n->scatter && n->inputs.size() == 1) {  // a view: add g into its region of the input's slot
      Edge& e = n->inputs[0];
      if (e.node) {
        scatter_into(grads[e.node.get()], e.node.get(), n->scatter, g);
        if (--pending[e.node.get()] == 0) ready.push_back(e.node.get());
      } else if (e.leaf) {
        scatter_into(e.leaf->grad, e.leaf.get(), n->scatter, g);
        if (hook && --leaf_pending[e.leaf.get()] == 0) hook(e.leaf.get());
      }
      if (!retain_graph) {
        n->backward = nullptr;
        n->scatter = nullptr;
      }
      continue;
    }
    std::vector<Tensor> in_grads = n->backward(g);
    TZ_CHECK(in_grads.size() == n->inputs.size(), op_name(n->op), ": backward returned ", in_grads.size(),
             " gradients for ", n->inputs.size(), " inputs");
    for (size_t i = 0; i < n->inputs.size(); ++i) {
      Edge& e = n->inputs[i];
      if (e.node) {
        if (in_grads[i].defined()) {
          check_grad_shape(in_grads[i], e.node->out_shape, op_name(n->op));
          Tensor& slot = grads[e.node.get()];
          const bool adds = slot.defined();  // accumulate's add makes a new tensor; else slot aliases
          accumulate(slot, in_grads[i]);
          if (adds)
            owned.insert(e.node.get());
          else
            owned.erase(e.node.get());
        }
        if (--pending[e.node.get()] == 0) {
          // A node whose every consumer sent nothing gets no gradient: skip its sweep.
          if (grads.count(e.node.get()))
            ready.push_back(e.node.get());
          else
            pending.erase(e.node.get());
        }
      } else if (e.leaf && in_grads[i].defined()) {
        // A leaf owns its gradient: copy the first one so that it aliases nothing.
        accumulate(e.leaf->grad, e.leaf->grad.defined() ? in_grads[i] : core::clone(in_grads[i]));
        owned.insert(e.leaf.get());
      }
      if (hook && e.leaf && --leaf_pending[e.leaf.get()] == 0) hook(e.leaf.get());
    }
    if (!retain_graph) {
      n->backward = nullptr;
      n->scatter = nullptr;
    }
  }
}

std::vector<OpId> graph_ops(const Tensor& root) {
  std::vector<OpId> ops;
  if (!root.defined() || !root.impl().autograd || !root.impl().autograd->grad_fn) return ops;
  std::unordered_set<Node*> seen;
  std::vector<Node*> stack{root.impl().autograd->grad_fn.get()};
  seen.insert(stack.back());
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    ops.push_back(n->op);
    for (Edge& e : n->inputs)
      if (e.node && seen.insert(e.node.get()).second) stack.push_back(e.node.get());
  }
  return ops;
}

std::string to_dot(const Tensor& root) {
  std::ostringstream os;
  os << "digraph autograd {\n  rankdir=BT;\n  node [shape=box, fontname=\"Helvetica\"];\n";
  if (root.defined() && root.impl().autograd && root.impl().autograd->grad_fn) {
    std::unordered_map<const void*, int> ids;
    auto id_of = [&](const void* p) {
      auto [it, fresh] = ids.try_emplace(p, int(ids.size()));
      return it->second;
    };
    std::vector<Node*> stack{root.impl().autograd->grad_fn.get()};
    std::unordered_set<Node*> seen{stack.back()};
    while (!stack.empty()) {
      Node* n = stack.back();
      stack.pop_back();
      int nid = id_of(n);
      os << "  n" << nid << " [label=\"" << op_name(n->op) << "\\n"
         << shape_str(n->out_shape) << " " << dtype_name(n->out_dtype) << "\"];\n";
      for (Edge& e : n->inputs) {
        if (e.node) {
          os << "  n" << id_of(e.node.get()) << " -> n" << nid << ";\n";
          if (seen.insert(e.node.get()).second) stack.push_back(e.node.get());
        } else if (e.leaf) {
          int lid = id_of(e.leaf.get());
          os << "  n" << lid << " [label=\"leaf\", shape=ellipse, style=filled, fillcolor=\"#dde8ff\"];\n";
          os << "  n" << lid << " -> n" << nid << ";\n";
        }
      }
    }
  }
  os << "}\n";
  return os.str();
}

}  // namespace tz
