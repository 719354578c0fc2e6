//! Custom operations of Burn's fusion stream, run unfused in order with the operations around
//! them: [`Gemm`] on Burn's fused backend (matrices and batches of them), [`GemmBias`] (through
//! [`register`]), and [`register`], which the kernels of this crate
//! with f32 inputs and outputs (LayerNorm's, softmax's) go through.

use std::marker::PhantomData;
use std::sync::Arc;

use burn::tensor::ops::FloatTensor;
use burn::tensor::{DType, Shape};
use burn_fusion::stream::{Operation, OperationStreams};
use burn_fusion::{Fusion, FusionBackend, FusionRuntime};
use burn_ir::{CustomOpIr, HandleContainer, OperationIr, OperationOutput, TensorIr};

use crate::{Gemm, GemmBias};

impl<B: FusionBackend + Gemm> Gemm for Fusion<B> {
    fn gemm(a: FloatTensor<Self>, transpose_a: bool, b: FloatTensor<Self>, transpose_b: bool) -> FloatTensor<Self> {
        #[derive(Clone, Debug)]
        struct GemmOp<B> {
            desc: CustomOpIr,
            transpose_a: bool,
            transpose_b: bool,
            _backend: PhantomData<B>,
        }

        impl<B: FusionBackend + Gemm> Operation<B::FusionRuntime> for GemmOp<B> {
            fn execute(&self, handles: &mut HandleContainer<<B::FusionRuntime as FusionRuntime>::FusionHandle>) {
                let ([a, b], [out]) = self.desc.as_fixed();
                let a = handles.get_float_tensor::<B>(a);
                let b = handles.get_float_tensor::<B>(b);
                let product = B::gemm(a, self.transpose_a, b, self.transpose_b);
                handles.register_float_tensor::<B>(&out.id, product);
            }
        }

        let rank = a.shape.num_dims();
        let rows = if transpose_a { a.shape[rank - 1] } else { a.shape[rank - 2] };
        let cols = if transpose_b { b.shape[rank - 2] } else { b.shape[rank - 1] };
        let dims: Vec<usize> = a.shape[..rank - 2].iter().copied().chain([rows, cols]).collect();
        let client = a.client.clone();
        let streams = OperationStreams::with_inputs([&a, &b]);
        let out = TensorIr::uninit(client.create_empty_handle(), Shape::from(dims), a.dtype);
        // One id per transpose combination, so that no cached plan mixes them up.
        let id = match (transpose_a, transpose_b) {
            (false, false) => "prunelab_cublas_gemm_nn",
            (false, true) => "prunelab_cublas_gemm_nt",
            (true, false) => "prunelab_cublas_gemm_tn",
            (true, true) => "prunelab_cublas_gemm_tt",
        };
        let desc = CustomOpIr::new(id, &[a.into_ir(), b.into_ir()], &[out]);
        let op = GemmOp::<B> { desc: desc.clone(), transpose_a, transpose_b, _backend: PhantomData };
        client.register(streams, OperationIr::Custom(desc), op).output()
    }
}

impl<B: FusionBackend + GemmBias> GemmBias for Fusion<B> {
    fn gemm_bias(a: FloatTensor<Self>, b: FloatTensor<Self>, bias: FloatTensor<Self>) -> FloatTensor<Self> {
        let shape = Shape::from([a.shape[0], b.shape[1]]);
        let [out] = register::<B, 3, 1>("prunelab_cublas_gemm_bias", [a, b, bias], [shape], |[a, b, bias]| {
            [B::gemm_bias(a, b, bias)]
        });
        out
    }

    fn column_sums(g: FloatTensor<Self>) -> FloatTensor<Self> {
        let shape = Shape::from([g.shape[1]]);
        let [out] = register::<B, 1, 1>("prunelab_cublas_column_sums", [g], [shape], |[g]| [B::column_sums(g)]);
        out
    }

    fn weight_and_bias_grads(a: FloatTensor<Self>, g: FloatTensor<Self>) -> [FloatTensor<Self>; 2] {
        let shapes = [Shape::from([a.shape[1], g.shape[1]]), Shape::from([g.shape[1]])];
        register::<B, 2, 2>("prunelab_cublas_weight_and_bias_grads", [a, g], shapes, |[a, g]| {
            B::weight_and_bias_grads(a, g)
        })
    }
}

type Run<B, const N: usize, const M: usize> = dyn Fn([FloatTensor<B>; N]) -> [FloatTensor<B>; M] + Send + Sync;

/// One operation of `N` f32 inputs and `M` f32 outputs of `shapes`, computed by `run` on the
/// fused backend's inner one. `id` names what `run` computes, whatever it captures.
pub(crate) fn register<B: FusionBackend, const N: usize, const M: usize>(
    id: &'static str,
    inputs: [FloatTensor<Fusion<B>>; N],
    shapes: [Shape; M],
    run: impl Fn([FloatTensor<B>; N]) -> [FloatTensor<B>; M] + Send + Sync + 'static,
) -> [FloatTensor<Fusion<B>>; M] {
    struct Op<B: FusionBackend, const N: usize, const M: usize> {
        desc: CustomOpIr,
        run: Arc<Run<B, N, M>>,
        _backend: PhantomData<B>,
    }

    impl<B: FusionBackend, const N: usize, const M: usize> std::fmt::Debug for Op<B, N, M> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Op").field("desc", &self.desc).finish()
        }
    }

    impl<B: FusionBackend, const N: usize, const M: usize> Clone for Op<B, N, M> {
        fn clone(&self) -> Self {
            Self { desc: self.desc.clone(), run: self.run.clone(), _backend: PhantomData }
        }
    }

    impl<B: FusionBackend, const N: usize, const M: usize> Operation<B::FusionRuntime> for Op<B, N, M> {
        fn execute(&self, handles: &mut HandleContainer<<B::FusionRuntime as FusionRuntime>::FusionHandle>) {
            let (inputs, outputs) = self.desc.as_fixed::<N, M>();
            let inputs = inputs.each_ref().map(|ir| handles.get_float_tensor::<B>(ir));
            let results = (self.run)(inputs);
            for (ir, tensor) in outputs.iter().zip(results) {
                handles.register_float_tensor::<B>(&ir.id, tensor);
            }
        }
    }

    let client = inputs[0].client.clone();
    let streams = OperationStreams::with_inputs(inputs.iter());
    let outputs = shapes.map(|shape| TensorIr::uninit(client.create_empty_handle(), shape, DType::F32));
    let inputs = inputs.map(|t| t.into_ir());
    let desc = CustomOpIr::new(id, &inputs, &outputs);
    let op = Op::<B, N, M> { desc: desc.clone(), run: Arc::new(run), _backend: PhantomData };
    client.register(streams, OperationIr::Custom(desc), op).outputs()
}
