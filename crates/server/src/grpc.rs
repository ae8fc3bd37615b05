//! The Open Inference Protocol over gRPC (`inference.GRPCInferenceService`), a thin binding
//! of [`InferenceService`].

use mend_proto::inference::grpc_inference_service_server::GrpcInferenceService;
use mend_proto::inference::{
    ModelInferRequest, ModelInferResponse, ModelMetadataRequest, ModelMetadataResponse,
    ModelReadyRequest, ModelReadyResponse, ServerLiveRequest, ServerLiveResponse,
    ServerMetadataRequest, ServerMetadataResponse, ServerReadyRequest, ServerReadyResponse,
};
use tonic::{Request, Response, Status};

use crate::service::InferenceService;

/// The generated server's handler.
#[derive(Debug, Clone)]
pub struct GrpcInference {
    service: InferenceService,
}

impl GrpcInference {
    pub fn new(service: InferenceService) -> Self {
        GrpcInference { service }
    }
}

#[tonic::async_trait]
impl GrpcInferenceService for GrpcInference {
    async fn server_live(
        &self,
        _request: Request<ServerLiveRequest>,
    ) -> Result<Response<ServerLiveResponse>, Status> {
        Ok(Response::new(ServerLiveResponse { live: true }))
    }

    async fn server_ready(
        &self,
        _request: Request<ServerReadyRequest>,
    ) -> Result<Response<ServerReadyResponse>, Status> {
        Ok(Response::new(ServerReadyResponse {
            ready: self.service.server_ready(),
        }))
    }

    async fn model_ready(
        &self,
        request: Request<ModelReadyRequest>,
    ) -> Result<Response<ModelReadyResponse>, Status> {
        let request = request.into_inner();
        let ready = self
            .service
            .model_ready(&request.name, &request.version)
            .await?;
        Ok(Response::new(ModelReadyResponse { ready }))
    }

    async fn server_metadata(
        &self,
        _request: Request<ServerMetadataRequest>,
    ) -> Result<Response<ServerMetadataResponse>, Status> {
        Ok(Response::new(self.service.server_metadata()))
    }

    async fn model_metadata(
        &self,
        request: Request<ModelMetadataRequest>,
    ) -> Result<Response<ModelMetadataResponse>, Status> {
        let request = request.into_inner();
        let metadata = self
            .service
            .model_metadata(&request.name, &request.version)
            .await?;
        Ok(Response::new(metadata))
    }

    async fn model_infer(
        &self,
        request: Request<ModelInferRequest>,
    ) -> Result<Response<ModelInferResponse>, Status> {
        let response = self.service.infer(request.into_inner()).await?;
        Ok(Response::new(response))
    }
}
