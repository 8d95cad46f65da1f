"""Our Triton FP8 flash-attention kernel (magi_engine.dit.fp8_attention runs it; imported only there).

One program computes BLOCK_M query rows of one head over all the keys of its span: online softmax in
float32 (exp2, the log2(e) folded into the logit scale), q·kᵀ and p·v as FP8 tensor-core products with
float32 accumulation (p·v promoted to float32 once per block of keys: Hopper's own FP8 accumulator is
coarser). The probabilities are rounded to e4m3 after scaling by P_SCALE (undone at the end
with v's scale); full blocks of keys run unmasked, the last partial one masked.
"""

import triton
import triton.language as tl

@triton.jit
def _block(acc, m_i, l_i, q, k_ptrs, v_ptrs, offs_n, start, kv_len, qk_scale, stride_kt, stride_vt,
           MASKED: tl.constexpr, P_SCALE: tl.constexpr, BLOCK_N: tl.constexpr):
    if MASKED:
        valid = (start + offs_n) < kv_len
        k = tl.load(k_ptrs + start * stride_kt, mask=valid[None, :], other=0.0)
    else:
        k = tl.load(k_ptrs + start * stride_kt)
    s = tl.dot(q, k) * qk_scale
    if MASKED:
        s = tl.where(valid[None, :], s, float("-inf"))
    m_new = tl.maximum(m_i, tl.max(s, 1))
    p = tl.math.exp2(s - m_new[:, None])
    alpha = tl.math.exp2(m_i - m_new)
    l_i = l_i * alpha + tl.sum(p, 1)
    acc = acc * alpha[:, None]
    if MASKED:
        v = tl.load(v_ptrs + start * stride_vt, mask=valid[:, None], other=0.0)
    else:
        v = tl.load(v_ptrs + start * stride_vt)
    # On Hopper an FP8 product's accumulator keeps ~14 bits unless promoted (Triton's default there: never):
    # over tens of thousands of keys whose v shares a mean, each block's share drops below its last bit and
    # is lost (39% rel. L2 on one engine layer, BENCHMARKS.md). Promote to float32 once per block of keys.
    acc = tl.dot((p * P_SCALE).to(tl.float8e4nv), v, acc, max_num_imprecise_acc=BLOCK_N)
    return acc, m_new, l_i

@triton.jit
def fp8_attention_kernel(Q, K, V, Out, q_scale, k_scale, v_scale, q_len, kv_len, kv_full, group_size,
                         softmax_scale_log2,
                         stride_qb, stride_qt, stride_qh, stride_kb, stride_kt, stride_kh,
                         stride_vb, stride_vt, stride_vh, stride_vd, stride_ob, stride_ot, stride_oh,
                         HEAD_DIM: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                         P_SCALE: tl.constexpr):
    pid_m = tl.program_id(0)
    head = tl.program_id(1)
    batch = tl.program_id(2)
    group = head // group_size
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, HEAD_DIM)
    q_rows = offs_m < q_len
    q = tl.load(Q + batch * stride_qb + head * stride_qh + offs_m[:, None] * stride_qt + offs_d[None, :],
                mask=q_rows[:, None], other=0.0)
    qk_scale = tl.load(q_scale) * tl.load(k_scale) * softmax_scale_log2
    # k as [HEAD_DIM, BLOCK_N] (q·kᵀ), v as [BLOCK_N, HEAD_DIM]; both contiguous along the product's
    # reduction (head dim for k, tokens for v, whose copy is token-major), as FP8 tensor cores want.
    k_ptrs = K + batch * stride_kb + group * stride_kh + offs_n[None, :] * stride_kt + offs_d[:, None]
    v_ptrs = V + batch * stride_vb + group * stride_vh + offs_n[:, None] * stride_vt + offs_d[None, :] * stride_vd
    m_i = tl.full([BLOCK_M], float("-inf"), tl.float32)
    l_i = tl.zeros([BLOCK_M], tl.float32)
    acc = tl.zeros([BLOCK_M, HEAD_DIM], tl.float32)
    for start in range(0, kv_full, BLOCK_N):
        acc, m_i, l_i = _block(acc, m_i, l_i, q, k_ptrs, v_ptrs, offs_n, start, kv_len, qk_scale,
                               stride_kt, stride_vt, False, P_SCALE, BLOCK_N)
    if kv_full < kv_len:  # the last, partial block of keys
        acc, m_i, l_i = _block(acc, m_i, l_i, q, k_ptrs, v_ptrs, offs_n, kv_full, kv_len, qk_scale,
                               stride_kt, stride_vt, True, P_SCALE, BLOCK_N)
    out = acc * (tl.load(v_scale) / P_SCALE) / l_i[:, None]
    tl.store(Out + batch * stride_ob + head * stride_oh + offs_m[:, None] * stride_ot + offs_d[None, :],
             out.to(Out.dtype.element_ty), mask=q_rows[:, None])
