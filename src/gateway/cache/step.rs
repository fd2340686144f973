//! The cache step of a request's journey ([`crate::gateway::journey`]): a hit, or the reply of an
//! identical request in flight, is the reply; otherwise the fill that writes the reply to the
//! cache when it ends well.

use super::{Caching, Consult, Fill, HEADER_CACHE, Outcome, hit_headers, reply};
use crate::gateway::journey::{Early, Endpoint, Journey, Peek};
use crate::gateway::record::Recording;
use crate::gateway::reply_headers;

// An early reply is moved once, to the client: boxing it would cost an allocation per cache hit.
#[allow(clippy::result_large_err)]
impl<E: Endpoint> Journey<'_, E> {
    /// cache: a hit (or the reply of an identical request in flight) is the reply; otherwise the
    /// fill that writes the reply when it ends well.
    pub(in crate::gateway) async fn cache(
        &mut self,
        peek: &E::Peek,
        body: &[u8],
        recording: &mut Option<Recording>,
    ) -> Result<Option<Fill>, Early> {
        let gateway = self.gateway;
        let Some(cache) = gateway
            .cache
            .as_ref()
            .filter(|_| E::CACHING != Caching::Off)
        else {
            return Ok(None);
        };
        let model = peek.model();
        let resolved = gateway.aliases.get(model).map_or(model, String::as_str);
        let r = recording.as_mut().expect("the request is recorded");
        let consulted = cache
            .consult(
                E::CACHING,
                E::NAME,
                resolved,
                r.owner_id(),
                self.headers,
                body,
                (peek.stream(), peek.include_usage(), peek.cache_mode()),
            )
            .await;
        let fill = match consulted {
            Err(e) => return Err(self.fail(recording, e)),
            Ok(Consult::Hit(entry)) => {
                let reply = reply(&entry, E::CACHING, peek.stream(), peek.include_usage());
                if let Some(mut response) = reply {
                    let mut r = recording.take().expect("the request is recorded");
                    r.unlisted = !gateway.is_listed(model, true);
                    r.hit(&entry.meta.made);
                    let elapsed = self.started.elapsed();
                    reply_headers(response.headers_mut(), &self.request_id, None, 0, elapsed);
                    hit_headers(response.headers_mut(), &entry);
                    return Err(response);
                }
                self.cached = Some(Outcome::Miss);
                None
            }
            Ok(Consult::Follow(follow)) => {
                let mut r = recording.take().expect("the request is recorded");
                r.unlisted = !gateway.is_listed(model, true);
                let mut response = follow.into_response(r);
                let elapsed = self.started.elapsed();
                reply_headers(response.headers_mut(), &self.request_id, None, 0, elapsed);
                response
                    .headers_mut()
                    .insert(HEADER_CACHE, Outcome::Hit.header());
                return Err(response);
            }
            Ok(Consult::Go { outcome, fill }) => {
                self.cached = Some(outcome);
                r.cache_slot = fill.as_ref().map(|f| f.slot());
                fill
            }
        };
        let r = recording.as_mut().expect("the request is recorded");
        r.record.cache = self.cached.map_or("", Outcome::as_str).to_string();
        Ok(fill)
    }
}
