!> @file gyre_dyn.F90
!> @brief Momentum: vector-invariant form with the energy-conserving potential-vorticity flux (Sadourny 1975)
!!        or, with ln_dynvor_een, the energy-and-enstrophy-conserving one (Arakawa and Lamb 1981, NEMO's EEN),
!!        Bernoulli gradient, wind stress and linear drag. Lateral viscosity is in gyre_ldf.
!>
!>   du/dt =  q (h v)  - d/dx(g ssh + KE) + taux/(rho0 h) - rdrag u
!>   dv/dt = -q (h u)  - d/dy(g ssh + KE)                 - rdrag v,      q = (f + zeta)/h at F points
module gyre_dyn
   use gyre_par
   use gyre_mpp, only: ni, nj
   use gyre_dom, only: tmask, umask, vmask, fmask, ff_f
   use gyre_oce, only: ht, uflx, vflx, zeta
   use gyre_sbc, only: utau
   use gyre_ssh, only: entrain
   implicit none
   private

   public :: dyn_vor, dyn_tend

   real(wp), parameter :: r1_12 = 1._wp / 12._wp
   real(wp), allocatable :: qf(:,:)     ! potential vorticity at F points (m-1 s-1)
   real(wp), allocatable :: bern(:,:)   ! Bernoulli function g*ssh + KE at T points (m2 s-2)
   real(wp), allocatable :: wet(:,:)    ! 1 where q is defined (an ocean T point around the F point)
   real(wp), allocatable :: zqa(:,:)    ! upwind-biased potential vorticity
   real(wp), allocatable :: tne(:,:), tnw(:,:), tse(:,:), tsw(:,:)   ! EEN: triads of q around each T point

contains

   !> Relative vorticity at F points with the lateral boundary condition of fmask (rn_shlat).
   subroutine dyn_vor(px)
      real(wp), intent(in) :: px(1-nn_hls:, 1-nn_hls:, :)   !< state with valid halos
      integer, parameter :: h = nn_hls
      integer :: ji, jj
      real(wp) :: zrdx, zrdy
      zrdx = 1._wp / rn_dx ; zrdy = 1._wp / rn_dy
      do jj = 1-h, nj+h-1
         do ji = 1-h, ni+h-1
            zeta(ji,jj) = ((px(ji+1,jj,jp_v) - px(ji,jj,jp_v)) * zrdx - (px(ji,jj+1,jp_u) - px(ji,jj,jp_u)) * zrdy) &
               &          * fmask(ji,jj)
         end do
      end do
   end subroutine dyn_vor

   !> Momentum tendencies (without viscosity) on the interior; needs ssh_flx and dyn_vor first.
   subroutine dyn_tend(px, pt)
      real(wp), intent(in)    :: px(1-nn_hls:, 1-nn_hls:, :)   !< state with valid halos
      real(wp), intent(inout) :: pt(1-nn_hls:, 1-nn_hls:, :)   !< tendencies; the u and v slots are set
      integer, parameter :: h = nn_hls
      integer :: ji, jj
      real(wp) :: zrdx, zrdy, zn, zhf, zcor, zpg, zwind, zrr, zuf, zvf, zsp, zgx, zgy
      if (.not. allocated(qf)) allocate(qf(1-h:ni+h, 1-h:nj+h), bern(1-h:ni+h, 1-h:nj+h), wet(1-h:ni+h, 1-h:nj+h), &
         &                              zqa(1-h:ni+h, 1-h:nj+h), tne(1-h:ni+h, 1-h:nj+h), tnw(1-h:ni+h, 1-h:nj+h), &
         &                              tse(1-h:ni+h, 1-h:nj+h), tsw(1-h:ni+h, 1-h:nj+h))
      zrdx = 1._wp / rn_dx ; zrdy = 1._wp / rn_dy ; zrr = 1._wp / rn_rho0
      ! potential vorticity at F points: thickness averaged over the surrounding ocean T points
      do jj = -1, nj+1
         do ji = -1, ni+1
            zn  = tmask(ji,jj) + tmask(ji+1,jj) + tmask(ji,jj+1) + tmask(ji+1,jj+1)
            zhf = ht(ji,jj) * tmask(ji,jj) + ht(ji+1,jj) * tmask(ji+1,jj) + ht(ji,jj+1) * tmask(ji,jj+1) &
               &  + ht(ji+1,jj+1) * tmask(ji+1,jj+1)
            if (zn > 0.5_wp) then
               qf(ji,jj) = (ff_f(ji,jj) + zeta(ji,jj)) * zn / zhf
               wet(ji,jj) = 1._wp
            else
               qf(ji,jj) = 0._wp
               wet(ji,jj) = 0._wp
            end if
         end do
      end do
      ! upwind-biased PV (anticipated potential vorticity method): q - rn_apvm dx (u/|u|).grad q, a scale-selective
      ! sink of enstrophy that removes grid-scale noise without damping the eddies; one-sided next to land
      if (rn_apvm > 0._wp) then
         do jj = 0, nj
            do ji = 0, ni
               zuf = 0.5_wp * (px(ji,jj,jp_u) + px(ji,jj+1,jp_u))
               zvf = 0.5_wp * (px(ji,jj,jp_v) + px(ji+1,jj,jp_v))
               zsp = sqrt(zuf**2 + zvf**2)
               zqa(ji,jj) = qf(ji,jj)
               if (zsp > 1.e-6_wp .and. wet(ji,jj) > 0.5_wp) then
                  zgx = 0.5_wp * (wet(ji+1,jj) * (qf(ji+1,jj) - qf(ji,jj)) + wet(ji-1,jj) * (qf(ji,jj) - qf(ji-1,jj))) &
                     &  / max(wet(ji+1,jj) + wet(ji-1,jj), 1._wp) * 2._wp
                  zgy = 0.5_wp * (wet(ji,jj+1) * (qf(ji,jj+1) - qf(ji,jj)) + wet(ji,jj-1) * (qf(ji,jj) - qf(ji,jj-1))) &
                     &  / max(wet(ji,jj+1) + wet(ji,jj-1), 1._wp) * 2._wp
                  zqa(ji,jj) = qf(ji,jj) - rn_apvm * (zuf * zgx + zvf * zgy) / zsp
               end if
            end do
         end do
         qf(0:ni, 0:nj) = zqa(0:ni, 0:nj)
      end if
      if (ln_dynvor_een) call een_triads()
      ! Bernoulli function
      do jj = 1, nj+1
         do ji = 1, ni+1
            bern(ji,jj) = grav * px(ji,jj,jp_ssh) + 0.25_wp * (px(ji-1,jj,jp_u)**2 + px(ji,jj,jp_u)**2 &
               &                                           + px(ji,jj-1,jp_v)**2 + px(ji,jj,jp_v)**2)
         end do
      end do
      do jj = 1, nj
         do ji = 1, ni
            ! zonal momentum
            if (ln_dynvor_een) then
               zcor = r1_12 * (tne(ji,jj) * vflx(ji,jj) + tnw(ji+1,jj) * vflx(ji+1,jj) &
                  &          + tse(ji,jj) * vflx(ji,jj-1) + tsw(ji+1,jj) * vflx(ji+1,jj-1))
            else
               zcor = 0.25_wp * (qf(ji,jj) * (vflx(ji,jj) + vflx(ji+1,jj)) + qf(ji,jj-1) * (vflx(ji,jj-1) + vflx(ji+1,jj-1)))
            end if
            zpg   = -(bern(ji+1,jj) - bern(ji,jj)) * zrdx
            zwind = utau(jj) * zrr / max(0.5_wp * (ht(ji,jj) + ht(ji+1,jj)), rn_hthin)   ! over rn_hthin at least
            pt(ji,jj,jp_u) = (zcor + zpg + zwind - rn_rdrag * px(ji,jj,jp_u)) * umask(ji,jj)
            if (min(ht(ji,jj), ht(ji+1,jj)) < rn_hthin) pt(ji,jj,jp_u) = pt(ji,jj,jp_u) - umask(ji,jj) * px(ji,jj,jp_u) &
               & * (entrain(ht(ji,jj)) + entrain(ht(ji+1,jj))) / max(ht(ji,jj) + ht(ji+1,jj), rn_hthin)  ! entrained water at rest
            ! meridional momentum
            if (ln_dynvor_een) then
               zcor = -r1_12 * (tsw(ji,jj+1) * uflx(ji-1,jj+1) + tse(ji,jj+1) * uflx(ji,jj+1) &
                  &           + tnw(ji,jj) * uflx(ji-1,jj) + tne(ji,jj) * uflx(ji,jj))
            else
               zcor = -0.25_wp * (qf(ji,jj) * (uflx(ji,jj) + uflx(ji,jj+1)) + qf(ji-1,jj) * (uflx(ji-1,jj) + uflx(ji-1,jj+1)))
            end if
            zpg   = -(bern(ji,jj+1) - bern(ji,jj)) * zrdy
            pt(ji,jj,jp_v) = (zcor + zpg - rn_rdrag * px(ji,jj,jp_v)) * vmask(ji,jj)
            if (min(ht(ji,jj), ht(ji,jj+1)) < rn_hthin) pt(ji,jj,jp_v) = pt(ji,jj,jp_v) - vmask(ji,jj) * px(ji,jj,jp_v) &
               & * (entrain(ht(ji,jj)) + entrain(ht(ji,jj+1))) / max(ht(ji,jj) + ht(ji,jj+1), rn_hthin)
         end do
      end do
   end subroutine dyn_tend

   !> EEN triads: sums of three of the four q around T point (i,j), each paired with one of the four thickness
   !> fluxes next to a velocity point (Arakawa and Lamb 1981); on T points 1..ni+1 x 1..nj+1.
   subroutine een_triads()
      integer :: ji, jj
      do jj = 1, nj+1
         do ji = 1, ni+1
            tne(ji,jj) = qf(ji-1,jj) + qf(ji,jj) + qf(ji,jj-1)
            tnw(ji,jj) = qf(ji-1,jj-1) + qf(ji-1,jj) + qf(ji,jj)
            tse(ji,jj) = qf(ji,jj) + qf(ji,jj-1) + qf(ji-1,jj-1)
            tsw(ji,jj) = qf(ji,jj-1) + qf(ji-1,jj-1) + qf(ji-1,jj)
         end do
      end do
   end subroutine een_triads

end module gyre_dyn
