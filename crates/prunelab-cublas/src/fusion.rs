//! [`Gemm`] on Burn's fused backend: a custom operation of the fusion stream, run unfused in order
//! with the operations around it.

use std::marker::PhantomData;

use burn::tensor::Shape;
use burn::tensor::ops::FloatTensor;
use burn_fusion::stream::{Operation, OperationStreams};
use burn_fusion::{Fusion, FusionBackend, FusionRuntime};
use burn_ir::{CustomOpIr, HandleContainer, OperationIr, OperationOutput, TensorIr};

use crate::Gemm;

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

        let rows = if transpose_a { a.shape[1] } else { a.shape[0] };
        let cols = if transpose_b { b.shape[0] } else { b.shape[1] };
        let client = a.client.clone();
        let streams = OperationStreams::with_inputs([&a, &b]);
        let out = TensorIr::uninit(client.create_empty_handle(), Shape::new([rows, cols]), a.dtype);
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
