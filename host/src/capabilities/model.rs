//! `subagent:plugin/model`: chat completions brokered by the host. Granted by
//! `tools = ["model"]`. The capability sees the host's providers only through
//! [`ModelBroker`] (defined with the model types, on the floor below); it
//! counts calls and tokens per task and enforces the task's token budget.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::bindings::subagent::plugin::model::{self as wit, Host};
use crate::model::{
    ChatRequest, ChatResponse, Message, ModelError, Role, StopReason, ToolCall, ToolDefinition,
};

pub use crate::model::ModelBroker;

/// Model calls and tokens of one task.
#[derive(Debug, Default)]
pub struct ModelUsage {
    pub calls: AtomicU64,
    pub input_tokens: AtomicU64,
    pub output_tokens: AtomicU64,
}

impl ModelUsage {
    fn tokens(&self) -> u64 {
        self.input_tokens.load(Ordering::Relaxed) + self.output_tokens.load(Ordering::Relaxed)
    }
}

/// The `model` capability's state inside a store.
pub struct ModelCtx {
    pub subagent: String,
    /// The task's effective model; `None` when no model is configured.
    pub model: Option<String>,
    /// `None` when the manifest does not grant `model`.
    pub broker: Option<Arc<dyn ModelBroker>>,
    pub usage: Arc<ModelUsage>,
    /// `limits.tokens`: input + output tokens the task may use.
    pub budget: Option<u64>,
}

impl ModelCtx {
    async fn call(&self, mut request: ChatRequest) -> Result<ChatResponse, ModelError> {
        let Some(broker) = &self.broker else {
            return Err(ModelError::Denied(format!(
                "subagent `{}` may not call models: add \"model\" to `tools` in its manifest",
                self.subagent
            )));
        };
        let Some(model) = self.model.clone() else {
            return Err(ModelError::Unavailable(format!(
                "no model for subagent `{}`: set `model` in its manifest, pass one at launch, or set `default_model` in the host config",
                self.subagent
            )));
        };
        if let Some(budget) = self.budget {
            let used = self.usage.tokens();
            if used >= budget {
                return Err(ModelError::BudgetExceeded(format!(
                    "the task used {used} of its {budget} tokens (limits.tokens)"
                )));
            }
            // The answer may not use more than what is left. (The prompt's
            // own tokens are only known afterwards, so input can still
            // overshoot; the next call is then refused.)
            let left = u32::try_from(budget - used).unwrap_or(u32::MAX);
            request.max_tokens = Some(request.max_tokens.map_or(left, |asked| asked.min(left)));
        }
        let response = broker.complete(model, request).await?;
        self.usage.calls.fetch_add(1, Ordering::Relaxed);
        self.usage
            .input_tokens
            .fetch_add(response.usage.input_tokens, Ordering::Relaxed);
        self.usage
            .output_tokens
            .fetch_add(response.usage.output_tokens, Ordering::Relaxed);
        Ok(response)
    }
}

/// Serve `subagent:plugin/model` from `get`'s [`ModelCtx`]. Linked for every
/// task; without the `model` grant every call answers `denied`.
///
/// # Errors
///
/// When the linker refuses a definition.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut wasmtime::component::Linker<T>,
    get: fn(&mut T) -> &mut ModelCtx,
) -> wasmtime::Result<()> {
    crate::bindings::subagent::plugin::model::add_to_linker::<
        T,
        wasmtime::component::HasSelf<ModelCtx>,
    >(linker, get)
}

impl Host for ModelCtx {
    async fn complete(
        &mut self,
        request: wit::ChatRequest,
    ) -> Result<wit::ChatResponse, wit::ModelError> {
        let request = ChatRequest {
            messages: request.messages.into_iter().map(message_from_wit).collect(),
            tools: request
                .tools
                .into_iter()
                .map(|t| ToolDefinition {
                    name: t.name,
                    description: t.description,
                    parameters: t.parameters,
                })
                .collect(),
            max_tokens: request.max_tokens,
            temperature: request.temperature,
        };
        match self.call(request).await {
            Ok(response) => Ok(wit::ChatResponse {
                content: response.content,
                tool_calls: response.tool_calls.into_iter().map(call_to_wit).collect(),
                stop_reason: match response.stop_reason {
                    StopReason::EndTurn => wit::StopReason::EndTurn,
                    StopReason::ToolCalls => wit::StopReason::ToolCalls,
                    StopReason::MaxTokens => wit::StopReason::MaxTokens,
                    StopReason::Other => wit::StopReason::Other,
                },
                usage: wit::Usage {
                    input_tokens: response.usage.input_tokens,
                    output_tokens: response.usage.output_tokens,
                },
                model: response.model,
            }),
            Err(err) => Err(error_to_wit(err)),
        }
    }
}

fn message_from_wit(m: wit::Message) -> Message {
    Message {
        role: match m.role {
            wit::Role::System => Role::System,
            wit::Role::User => Role::User,
            wit::Role::Assistant => Role::Assistant,
            wit::Role::Tool => Role::Tool,
        },
        content: m.content,
        tool_calls: m
            .tool_calls
            .into_iter()
            .map(|c| ToolCall {
                id: c.id,
                name: c.name,
                arguments: c.arguments,
            })
            .collect(),
        tool_call_id: m.tool_call_id,
    }
}

fn call_to_wit(c: ToolCall) -> wit::ToolCall {
    wit::ToolCall {
        id: c.id,
        name: c.name,
        arguments: c.arguments,
    }
}

fn error_to_wit(err: ModelError) -> wit::ModelError {
    match err {
        ModelError::Auth(m) => wit::ModelError::Auth(m),
        ModelError::RateLimited {
            message,
            retry_after,
        } => wit::ModelError::RateLimited(wit::RateLimit {
            message,
            retry_after_ms: retry_after.map(|d| d.as_millis() as u64),
        }),
        ModelError::Timeout(m) => wit::ModelError::Timeout(m),
        ModelError::BadRequest(m) => wit::ModelError::BadRequest(m),
        ModelError::Unavailable(m) => wit::ModelError::Unavailable(m),
        ModelError::Denied(m) => wit::ModelError::Denied(m),
        ModelError::BudgetExceeded(m) => wit::ModelError::BudgetExceeded(m),
    }
}

#[cfg(test)]
mod tests {
    //! The capability alone, with a fake [`ModelBroker`]: no wasm, no provider.
    use std::sync::Mutex;

    use super::*;
    use crate::model::{BoxFuture, TokenUsage};

    /// Answers every request, recording the model asked for and the token cap.
    #[derive(Default)]
    struct Fake {
        asked: Mutex<Vec<(String, Option<u32>)>>,
    }

    impl ModelBroker for Fake {
        fn complete(
            &self,
            model: String,
            request: ChatRequest,
        ) -> BoxFuture<'_, Result<ChatResponse, ModelError>> {
            self.asked
                .lock()
                .unwrap()
                .push((model.clone(), request.max_tokens));
            Box::pin(async move {
                Ok(ChatResponse {
                    content: "ok".into(),
                    tool_calls: Vec::new(),
                    stop_reason: StopReason::EndTurn,
                    usage: TokenUsage {
                        input_tokens: 60,
                        output_tokens: 40,
                    },
                    model,
                })
            })
        }
    }

    fn ctx(broker: Option<Arc<dyn ModelBroker>>, budget: Option<u64>) -> ModelCtx {
        ModelCtx {
            subagent: "prompt-agent".into(),
            model: Some("local".into()),
            broker,
            usage: Arc::new(ModelUsage::default()),
            budget,
        }
    }

    fn request() -> wit::ChatRequest {
        wit::ChatRequest {
            messages: vec![wit::Message {
                role: wit::Role::User,
                content: "hello".into(),
                tool_calls: Vec::new(),
                tool_call_id: None,
            }],
            tools: Vec::new(),
            max_tokens: None,
            temperature: None,
        }
    }

    #[tokio::test]
    async fn calls_go_to_the_tasks_model_and_are_counted_against_its_budget() {
        let fake = Arc::new(Fake::default());
        let mut ctx = ctx(Some(fake.clone()), Some(150));
        assert_eq!(ctx.complete(request()).await.unwrap().content, "ok");
        // 100 of 150 tokens used: the next answer may use at most 50.
        ctx.complete(request()).await.unwrap();
        assert!(matches!(
            ctx.complete(request()).await,
            Err(wit::ModelError::BudgetExceeded(_))
        ));
        assert_eq!(
            *fake.asked.lock().unwrap(),
            [
                ("local".to_owned(), Some(150)),
                ("local".to_owned(), Some(50))
            ]
        );
        assert_eq!(ctx.usage.calls.load(Ordering::Relaxed), 2);
        assert_eq!(ctx.usage.tokens(), 200);
    }

    #[tokio::test]
    async fn without_the_grant_a_call_is_denied_naming_it() {
        let mut ctx = ctx(None, None);
        match ctx.complete(request()).await {
            Err(wit::ModelError::Denied(message)) => {
                assert!(message.contains("\"model\""), "{message}")
            }
            other => panic!("expected denied, got {other:?}"),
        }
        assert_eq!(ctx.usage.calls.load(Ordering::Relaxed), 0);
    }
}
