//! English and Simplified Chinese. English is the source text and the key: the server renders
//! English, and the browser switches after hydration to the language kept in localStorage.

use leptos::prelude::*;

#[cfg(feature = "hydrate")]
const STORAGE_KEY: &str = "llmb-lang";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Zh,
}

impl Lang {
    fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Zh => "zh-CN",
        }
    }
}

/// The current language; `t` makes a view reactive to it.
#[derive(Clone, Copy)]
pub struct I18n(RwSignal<Lang>);

impl I18n {
    /// The text in the current language (English when no translation exists).
    pub fn t(self, en: &'static str) -> &'static str {
        match self.0.get() {
            Lang::En => en,
            Lang::Zh => zh(en).unwrap_or(en),
        }
    }

    /// `t` with each `{}` replaced by the next argument.
    pub fn f(self, en: &'static str, args: &[&str]) -> String {
        let mut out = String::new();
        let mut rest = self.t(en);
        for arg in args {
            match rest.split_once("{}") {
                Some((before, after)) => {
                    out.push_str(before);
                    out.push_str(arg);
                    rest = after;
                }
                None => break,
            }
        }
        out.push_str(rest);
        out
    }

    pub fn lang(self) -> Lang {
        self.0.get()
    }

    fn set(self, lang: Lang) {
        self.0.set(lang);
        #[cfg(feature = "hydrate")]
        {
            if let Some(root) = document().document_element() {
                let _ = root.set_attribute("lang", lang.code());
            }
            if let Ok(Some(storage)) = window().local_storage() {
                let _ = storage.set_item(STORAGE_KEY, lang.code());
            }
        }
    }
}

pub fn provide_i18n() -> I18n {
    let i18n = I18n(RwSignal::new(Lang::En));
    provide_context(i18n);
    Effect::new(move |_| {
        #[cfg(feature = "hydrate")]
        if let Ok(Some(storage)) = window().local_storage()
            && storage.get_item(STORAGE_KEY).ok().flatten().as_deref() == Some(Lang::Zh.code())
        {
            i18n.set(Lang::Zh);
        }
    });
    i18n
}

pub fn use_i18n() -> I18n {
    expect_context::<I18n>()
}

#[component]
pub fn LangSwitch() -> impl IntoView {
    let i18n = use_i18n();
    view! {
        <label class="lang-switch">
            <span class="visually-hidden">"Language / 语言"</span>
            <select
                aria-label="Language / 语言"
                prop:value=move || i18n.lang().code()
                on:change=move |ev| {
                    i18n.set(if event_target_value(&ev) == Lang::Zh.code() { Lang::Zh } else { Lang::En })
                }
            >
                <option value="en">"English"</option>
                <option value="zh-CN">"简体中文"</option>
            </select>
        </label>
    }
}

fn zh(en: &str) -> Option<&'static str> {
    Some(match en {
        // Shell
        "This gateway is open: anyone who can reach it can use its provider keys. Set LLM_BRIDGE_MASTER_KEY to require a key." => {
            "此网关未设访问密钥：任何能访问它的人都可以使用其服务商密钥。设置 LLM_BRIDGE_MASTER_KEY 以要求密钥。"
        }
        "Log out" => "退出登录",
        "Dashboard" => "仪表盘",
        "Providers" => "服务商",
        "API tester" => "API 测试",
        "Requests" => "请求日志",
        "System" => "系统",
        "Main" => "主导航",
        "Cost analysis" => "成本分析",
        "Close" => "关闭",
        "Loading…" => "加载中…",
        "Time window" => "时间窗口",
        "Live · refreshes every 5 s" => "实时 · 每 5 秒刷新",
        "Retry" => "重试",
        "Details" => "详情",
        "All" => "全部",
        "none" => "无",
        // Dashboard
        "Success rate" => "成功率",
        "Tokens in" => "输入 tokens",
        "Tokens out" => "输出 tokens",
        "Cost" => "费用",
        "Latency p50" => "延迟 p50",
        "Latency p95" => "延迟 p95",
        "Cache hit ratio" => "缓存命中率",
        "Saved by the cache" => "缓存节省",
        "Cache" => "缓存",
        "Latency" => "延迟",
        "Tokens" => "Tokens",
        "Errors" => "错误",
        "Top models" => "热门模型",
        "Top providers" => "热门服务商",
        "Model" => "模型",
        "Provider" => "服务商",
        "API" => "接口",
        "Key" => "密钥",
        "Error rate" => "错误率",
        "No traffic in this window yet." => "该时间窗口内还没有请求。",
        "Cannot load the dashboard: {}" => "无法加载仪表盘：{}",
        "Times in UTC" => "时间为 UTC",
        // Providers
        "Hot" => "最热",
        "Active" => "活跃",
        "Configured" => "已配置",
        "Not configured" => "未配置",
        "Set {} to enable it." => "设置 {} 以启用。",
        "Requests/min (1h)" => "每分钟请求 (1h)",
        "Requests ({})" => "请求数 ({})",
        "Latency p50 / p95" => "延迟 p50 / p95",
        "Tokens in / out" => "输入 / 输出 tokens",
        "{} models" => "{} 个模型",
        "Cannot load the providers: {}" => "无法加载服务商：{}",
        "Models and prices" => "模型与价格",
        "Recent errors" => "最近的错误",
        "No errors recorded." => "没有错误记录。",
        "Context" => "上下文",
        "Input $/1M" => "输入 $/1M",
        "Cached $/1M" => "缓存输入 $/1M",
        "Output $/1M" => "输出 $/1M",
        "Configured models (no catalogue price)" => "配置的模型（无目录价格）",
        "Base URL" => "基础 URL",
        "Sorted by requests in the window; 🔥 the busiest in the last hour, ✨ traffic in the last hour." => {
            "按窗口内请求数排序；🔥 最近一小时最繁忙，✨ 最近一小时有流量。"
        }
        // System
        "Status" => "状态",
        "Version" => "版本",
        "Uptime" => "运行时间",
        "Listen address" => "监听地址",
        "Store" => "存储",
        "Memory (RSS)" => "内存 (RSS)",
        "CPU time" => "CPU 时间",
        "Dropped stats records" => "丢弃的统计记录",
        "Effective configuration" => "生效配置",
        "Secrets are masked." => "密钥已隐藏。",
        "enabled" => "已启用",
        "reachable" => "可达",
        "unreachable" => "不可达",
        "unavailable" => "不可用",
        "Cannot load the system information: {}" => "无法加载系统信息：{}",
        // Tester
        "Request" => "请求",
        "Response" => "响应",
        "System prompt" => "系统提示词",
        "Conversation" => "对话",
        "Role" => "角色",
        "Message {}" => "消息 {}",
        "user" => "用户",
        "assistant" => "助手",
        "Add a turn" => "添加一轮",
        "Remove" => "删除",
        "Remove message {}" => "删除消息 {}",
        "Temperature" => "温度",
        "Max tokens" => "最大 tokens",
        "Stream the reply" => "流式返回",
        "Chat completions (OpenAI)" => "Chat Completions（OpenAI）",
        "Messages (Anthropic)" => "Messages（Anthropic）",
        "Responses (OpenAI)" => "Responses（OpenAI）",
        "Send" => "发送",
        "Stop" => "停止",
        "Sending…" => "发送中…",
        "Reset the form" => "重置表单",
        "Add the reply to the conversation" => "将回复加入对话",
        "Time to first token" => "首 token 时间",
        "Total time" => "总耗时",
        "Chunks" => "分块数",
        "Raw JSON" => "原始 JSON",
        "Code" => "代码",
        "Copy" => "复制",
        "Copied" => "已复制",
        "The reply appears here." => "回复将显示在这里。",
        "Stopped." => "已停止。",
        "Cannot load the models: {}" => "无法加载模型：{}",
        "No provider is configured, so there is no model to try." => {
            "没有配置任何服务商，暂无可测试的模型。"
        }
        "unpriced" => "无价格",
        "Form saved in this browser." => "表单已保存在本浏览器。",
        // Requests
        "Time (UTC)" => "时间 (UTC)",
        "TTFT" => "首 token",
        "Stream" => "流式",
        "ok" => "成功",
        "error" => "错误",
        "yes" => "是",
        "no" => "否",
        "No request matches these filters." => "没有符合筛选条件的请求。",
        "Cannot load the request log: {}" => "无法加载请求日志：{}",
        "Request {}" => "请求 {}",
        "Clear filters" => "清除筛选",
        "{} requests shown (newest first)" => "显示 {} 条请求（最新在前）",
        // Cost analysis
        "Estimate" => "估算",
        "Traffic of the window" => "窗口内流量",
        "A token volume" => "指定 token 量",
        "Input tokens" => "输入 tokens",
        "Output tokens" => "输出 tokens",
        "Estimated cost" => "估算费用",
        "What this traffic would cost on each catalogued model, cheapest first." => {
            "这些流量在各目录模型上的费用，从低到高。"
        }
        "Spend by provider" => "按服务商的花费",
        "Spend by model" => "按模型的花费",
        "Spend by key" => "按密钥的花费",
        "Pricing catalogue" => "价格目录",
        "Spend in the window: {}" => "窗口内花费：{}",
        "Cannot load the cost analysis: {}" => "无法加载成本分析：{}",
        "embeddings" => "嵌入模型",
        "Reasoning" => "推理过程",
        // Teams
        "Teams" => "团队",
        "Team" => "团队",
        "User" => "用户",
        "Source" => "来源",
        "Members" => "成员",
        "Spent today" => "今日花费",
        "Spent this month" => "本月花费",
        "No teams yet." => "还没有团队。",
        "Usage per team (24 h)" => "按团队的用量（24 小时）",
        "Usage per user (24 h)" => "按用户的用量（24 小时）",
        "Cannot load the teams: {}" => "无法加载团队：{}",
        "Teams group JWT callers and virtual keys under shared models, limits and a budget. Define them in the configuration or with /api/teams." => {
            "团队让 JWT 调用方和虚拟密钥共享模型、限额和预算。可在配置文件或通过 /api/teams 定义。"
        }
        // Keys
        "Keys" => "密钥",
        "Give each client its own key, with the models it may use, rate limits, a budget and an expiry. A secret is shown once, when its key is created or rotated." => {
            "为每个客户端分配独立的密钥，可限定模型、速率、预算和有效期。密钥只在创建或轮换时显示一次。"
        }
        "Existing keys" => "已有密钥",
        "Cannot load the keys: {}" => "无法加载密钥：{}",
        "Cannot create the key: {}" => "无法创建密钥：{}",
        "Cannot rotate the key: {}" => "无法轮换密钥：{}",
        "Cannot revoke the key: {}" => "无法吊销密钥：{}",
        "The secret of “{}”" => "“{}” 的密钥",
        "Copy it now: it will not be shown again." => "请立即复制：它不会再次显示。",
        "I have stored it" => "我已妥善保存",
        "Create a key" => "创建密钥",
        "Name" => "名称",
        "Models" => "模型",
        "all" => "全部",
        "Comma-separated; empty allows every model." => "用逗号分隔；留空表示允许所有模型。",
        "Requests/min" => "每分钟请求数",
        "Tokens/min" => "每分钟 tokens",
        "Budget (USD)" => "预算（美元）",
        "Budget period" => "预算周期",
        "Per day (UTC)" => "每天 (UTC)",
        "Per month (UTC)" => "每月 (UTC)",
        "Expires on (UTC)" => "到期日 (UTC)",
        "Create key" => "创建密钥",
        "Creating…" => "创建中…",
        "Empty limits mean no limit." => "限额留空表示不限。",
        "Requests/min must be a whole number of at least 1." => {
            "每分钟请求数必须是不小于 1 的整数。"
        }
        "Tokens/min must be a whole number of at least 1." => {
            "每分钟 tokens 必须是不小于 1 的整数。"
        }
        "The budget must be an amount in USD, 0 or more." => "预算必须是不小于 0 的美元金额。",
        "The expiry must be a date (YYYY-MM-DD)." => "到期日必须是日期 (YYYY-MM-DD)。",
        "No virtual keys yet: create one above." => "还没有虚拟密钥：请在上方创建。",
        "Prefix" => "前缀",
        "RPM" => "RPM",
        "TPM" => "TPM",
        "Budget" => "预算",
        "Spend today / month" => "今日 / 本月花费",
        "Requests (24h)" => "请求数 (24h)",
        "Tokens (24h)" => "Tokens (24h)",
        "Cost (24h)" => "费用 (24h)",
        "Expires (UTC)" => "到期 (UTC)",
        "Created (UTC)" => "创建于 (UTC)",
        "Actions" => "操作",
        "expired" => "已过期",
        "{} / day" => "{} / 天",
        "{} / month" => "{} / 月",
        "Rotate" => "轮换",
        "Revoke" => "吊销",
        "Revoke “{}”?" => "吊销 “{}”？",
        "Clients using this key are refused from now on. This cannot be undone." => {
            "使用此密钥的客户端将立即被拒绝。此操作无法撤销。"
        }
        "Rotate “{}”?" => "轮换 “{}”？",
        "The current secret stops working at once; clients need the new one, which is shown once." => {
            "当前密钥立即失效；客户端需要使用新密钥（仅显示一次）。"
        }
        "Cancel" => "取消",
        _ => return None,
    })
}
