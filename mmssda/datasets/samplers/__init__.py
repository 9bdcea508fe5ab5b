from .multi_domain_sampler import MultiDomainSampler

__all__ = ['MultiDomainSampler']
