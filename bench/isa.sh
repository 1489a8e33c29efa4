# Sourced by the benchmark runners (run_gpt_bench.sh, run_quant_bench.sh): which instruction
# set and which build they measure, so that one machine can stand in for a smaller one.
#   ISA=avx512|avx2|scalar   hold every framework to it: tensorzoo by --isa (its kernels'
#                            SIMD level), OpenBLAS by OPENBLAS_CORETYPE, PyTorch by
#                            ATEN_CPU_CAPABILITY, oneDNN and MKL by their ISA caps.
#                            Unset: each uses the best the CPU has.
#   NATIVE=ON|OFF            ON (default): the library built for this CPU (-march=native);
#                            OFF: the portable build (-DTZ_NATIVE=OFF, run-time dispatch),
#                            in build-bench-portable/.
# Sets TZ_ISA (the arguments for tensorzoo's programs), BUILD's default, and prints the
# machine line every published table names.
ISA=${ISA:-}
NATIVE=${NATIVE:-ON}
TZ_ISA=()
case "$ISA" in
  "") ;;
  avx512) TZ_ISA=(--isa avx512) ;;
  avx2)
    TZ_ISA=(--isa avx2)
    export OPENBLAS_CORETYPE=Haswell ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 DNNL_MAX_CPU_ISA=AVX2 \
      MKL_ENABLE_INSTRUCTIONS=AVX2 ;;
  scalar)
    TZ_ISA=(--isa scalar)
    export OPENBLAS_CORETYPE=Prescott ATEN_CPU_CAPABILITY=default ONEDNN_MAX_CPU_ISA=SSE41 DNNL_MAX_CPU_ISA=SSE41 \
      MKL_ENABLE_INSTRUCTIONS=SSE4_2 ;;
  *) echo "$(basename "$0"): ISA must be avx512, avx2 or scalar, got '$ISA'" >&2; exit 2 ;;
esac
case "$NATIVE" in
  ON) BUILD=${BUILD:-$ROOT/build-bench} ;;
  OFF) BUILD=${BUILD:-$ROOT/build-bench-portable} ;;
  *) echo "$(basename "$0"): NATIVE must be ON or OFF, got '$NATIVE'" >&2; exit 2 ;;
esac
cpu_flags=$(grep -m1 '^flags' /proc/cpuinfo || true)
has() { [[ " $cpu_flags " == *" $1 "* ]] && echo yes || echo no; }
echo "# machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')" \
  "(family $(grep -m1 'cpu family' /proc/cpuinfo | cut -d: -f2 | tr -d ' ') model $(grep -m1 '^model\s' /proc/cpuinfo | cut -d: -f2 | tr -d ' ')," \
  "$(nproc) cores, avx2 $(has avx2), avx512f $(has avx512f), vnni $(has avx512_vnni), bf16 $(has avx512_bf16));" \
  "ISA ${ISA:-best}, build $([ "$NATIVE" = ON ] && echo native || echo portable)"
